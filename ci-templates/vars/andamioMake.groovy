// andamio ci-templates: run make targets of the project (check, test, build, drift, ...).
//
// Inputs (named arguments):
//   targets: String, required - make targets, space-separated (e.g. 'restore build')
//   dir:     String - folder of the project inside the repository (default '.')
void call(Map args = [:]) {
    String targets = args.get('targets', '').trim()
    if (!targets) {
        error 'andamioMake: targets is required'
    }
    if (!(targets ==~ /[A-Za-z0-9_. -]+/)) {
        error "andamioMake: targets must be make target names, got '${targets}'"
    }
    dir(args.get('dir', '.')) {
        sh "make ${targets}"
    }
}
