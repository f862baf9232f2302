// andamio ci-templates: make targets that need a secret (deploy-staging, promote deploy-prod).
// The manual approval is the `input` directive of the calling stage (with a submitter group).
// GitOps deploys (the project's `deploy-staging`/`deploy-prod` with Kubernetes) commit on a
// branch and open its PR/MR with FORGE_TOKEN: give forgeCredentialsId, and set FORGE (plus
// FORGE_API_URL and FORGE_PROJECT) in the environment, Jenkins detecting no forge.
//
// Inputs (named arguments):
//   targets:            String, required - make targets, space-separated
//   credentialsId:      String - Jenkins secret-text credential bound for the call (default: none)
//   variable:           String - environment variable the secret is bound to (required with credentialsId)
//   forgeCredentialsId: String - secret-text credential bound to FORGE_TOKEN (default: none)
//   dir:                String - folder of the project inside the repository (default '.')
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
    String forgeCredentialsId = args.get('forgeCredentialsId', '')
    List secrets = credentialsId ? [string(credentialsId: credentialsId, variable: variable)] : []
    if (forgeCredentialsId) {
        secrets << string(credentialsId: forgeCredentialsId, variable: 'FORGE_TOKEN')
    }
    dir(args.get('dir', '.')) {
        if (forgeCredentialsId) {
            andamioForgeCode()
        }
        withCredentials(secrets) {
            sh "make ${targets}"
        }
    }
}
