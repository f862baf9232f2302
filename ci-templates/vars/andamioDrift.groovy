// andamio ci-templates: the scheduled drift check, `make restore drift` (CURRENT, the recent
// batch, from the environment); when it fails, `make drift-issue` opens the issue "Drift
// detected" linking the build (BUILD_URL; an open one gets a comment), then the stage fails.
// FORGE (plus FORGE_API_URL and FORGE_PROJECT) in the environment: Jenkins detects no forge.
//
// Inputs (named arguments, all optional):
//   forgeCredentialsId: String - secret-text credential bound to FORGE_TOKEN for the issue
//                       alone (default: none, and `make drift-issue` says there is no token)
//   dir:                String - folder of the project inside the repository (default '.')
void call(Map args = [:]) {
    String forgeCredentialsId = args.get('forgeCredentialsId', '')
    List forge = forgeCredentialsId ? [string(credentialsId: forgeCredentialsId, variable: 'FORGE_TOKEN')] : []
    dir(args.get('dir', '.')) {
        try {
            sh 'make restore drift'
        } catch (failure) {
            andamioForgeCode()
            withCredentials(forge) {
                sh 'make drift-issue'
            }
            throw failure
        }
    }
}
