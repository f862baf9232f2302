// andamio ci-templates: the ML pipeline stage: dvc pull -> dvc repro (the quality gate fails
// the stage) -> dvc push -> metrics/params diff against the default branch, archived, then
// `make pr-comment`: on a pull/merge request build (CHANGE_ID) the diff becomes its comment
// (with FORGE, FORGE_API_URL and FORGE_PROJECT in the environment: Jenkins detects no forge).
//
// Inputs (named arguments, all optional):
//   dir:                String - folder of the project inside the repository (default '.')
//   base:               String - ref the metrics and params are compared with (default 'origin/main')
//   archive:            boolean - archive reports/ as build artifacts (default true)
//   credentialsId:      String - secret-text credential bound for the run, e.g. the database URL
//                       a SQL data source's ingest stage reads (default: none)
//   variable:           String - environment variable the secret is bound to (required with credentialsId)
//   forgeCredentialsId: String - secret-text credential bound to FORGE_TOKEN for the comment
//                       alone (default: none, and `make pr-comment` says there is no token)
void call(Map args = [:]) {
    String base = args.get('base', 'origin/main')
    boolean archive = args.get('archive', true)
    String credentialsId = args.get('credentialsId', '')
    String variable = args.get('variable', '')
    if (credentialsId && !(variable ==~ /[A-Za-z_][A-Za-z0-9_]*/)) {
        error "andamioPipeline: variable must be an environment variable name with credentialsId, got '${variable}'"
    }
    List secrets = credentialsId ? [string(credentialsId: credentialsId, variable: variable)] : []
    String forgeCredentialsId = args.get('forgeCredentialsId', '')
    List forge = forgeCredentialsId ? [string(credentialsId: forgeCredentialsId, variable: 'FORGE_TOKEN')] : []
    dir(args.get('dir', '.')) {
        try {
            withCredentials(secrets) {
                withEnv(["BASE=${base}"]) {
                    sh 'make restore pipeline push metrics-diff'
                }
            }
        } finally {
            if (archive) {
                archiveArtifacts artifacts: 'reports/**', allowEmptyArchive: true
            }
        }
        andamioForgeCode()
        withCredentials(forge) {
            sh 'make pr-comment'
        }
    }
}
