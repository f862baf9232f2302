// andamio ci-templates: lays the library's forge code (resources/andamio/) where the project's
// forge make targets look for it in a shared-style project, build/andamio-ci/ (the default
// ANDAMIO_CI of its Makefile): `make pr-comment`, `make drift-issue`, `make change-request`
// and the GitOps deploys then need no clone of the library.  A standalone project has its own
// vendored copy in .andamio-ci/ and ignores this one.  The other steps call it.
//
// Inputs (named arguments, all optional):
//   dir: String - folder of the project inside the repository (default '.')
void call(Map args = [:]) {
    dir(args.get('dir', '.')) {
        ['forge.py', 'promote_image.py'].each { String name ->
            writeFile file: "build/andamio-ci/resources/andamio/${name}", text: libraryResource("andamio/${name}")
        }
        // These files are this library version's: a ref make once recorded for a clone of
        // another version (a reused workspace) must not make it fetch over them.
        sh 'rm -f build/andamio-ci/.andamio-ref'
    }
}
