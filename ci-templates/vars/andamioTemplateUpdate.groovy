// andamio ci-templates: the scheduled template update, `make template-update change-request`:
// when the project is behind the template, `andamio update` commits on a branch and the
// project's `change-request` target pushes it and opens its PR/MR with the summary.  Requires
// the project's `template-update` and `change-request` make targets, and FORGE (plus
// FORGE_API_URL and FORGE_PROJECT) in the environment: Jenkins detects no forge.
//
// Inputs (named arguments):
//   credentialsId: String, required - secret-text credential bound to FORGE_TOKEN (a token
//                  allowed to push branches and open PRs/MRs)
//   branch:        String - branch the update is committed on (default 'template-update')
//   dir:           String - folder of the project inside the repository (default '.')
void call(Map args = [:]) {
    String credentialsId = args.get('credentialsId', '')
    if (!credentialsId) {
        error 'andamioTemplateUpdate: credentialsId is required'
    }
    String branch = args.get('branch', 'template-update')
    if (!(branch ==~ /[A-Za-z0-9_.\/-]+/)) {
        error "andamioTemplateUpdate: branch must be a branch name, got '${branch}'"
    }
    dir(args.get('dir', '.')) {
        andamioForgeCode()
        withCredentials([string(credentialsId: credentialsId, variable: 'FORGE_TOKEN')]) {
            withEnv(["UPDATE_BRANCH=${branch}"]) {
                sh 'make template-update change-request'
            }
        }
    }
}
