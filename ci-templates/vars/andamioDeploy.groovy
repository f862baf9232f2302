// andamio ci-templates: make targets that need a secret (deploy-staging, promote).  The manual
// approval is the `input` directive of the calling stage (with a submitter group).
//
// Inputs (named arguments):
//   targets:       String, required - make targets, space-separated
//   credentialsId: String - Jenkins secret-text credential bound for the call (default: none)
//   variable:      String - environment variable the secret is bound to (required with credentialsId)
//   dir:           String - folder of the project inside the repository (default '.')
void call(Map args = [:]) {
    String targets = args.get('targets', '').trim()
    if (!targets || !(targets ==~ /[A-Za-z0-9_. -]+/)) {
        error "andamioDeploy: targets must be make target names, got '${targets}'"
    }
    String credentialsId = args.get('credentialsId', '')
    String variable = args.get('variable', '')
    if (credentialsId && !variable) {
        error 'andamioDeploy: variable is required with credentialsId'
    }
    List secrets = credentialsId ? [string(credentialsId: credentialsId, variable: variable)] : []
    dir(args.get('dir', '.')) {
        withCredentials(secrets) {
            sh "make ${targets}"
        }
    }
}
