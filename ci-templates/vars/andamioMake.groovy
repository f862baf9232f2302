// andamio ci-templates: run make targets of the project (check, test, audit, build, drift, ...).
//
// Inputs (named arguments):
//   targets:               String, required - make targets, space-separated (e.g. 'restore build')
//   registryCredentialsId: String - username/password credential bound to REGISTRY_USER and
//                          REGISTRY_PASSWORD, for `make push-image` (default: none)
//   dir:                   String - folder of the project inside the repository (default '.')
void call(Map args = [:]) {
    String targets = args.get('targets', '').trim()
    if (!targets) {
        error 'andamioMake: targets is required'
    }
    if (!(targets ==~ /[A-Za-z0-9_. -]+/)) {
        error "andamioMake: targets must be make target names, got '${targets}'"
    }
    String registryCredentialsId = args.get('registryCredentialsId', '')
    List secrets = registryCredentialsId ? [usernamePassword(credentialsId: registryCredentialsId,
        usernameVariable: 'REGISTRY_USER', passwordVariable: 'REGISTRY_PASSWORD')] : []  // pragma: allowlist secret
    dir(args.get('dir', '.')) {
        withCredentials(secrets) {
            sh "make ${targets}"
        }
    }
}
