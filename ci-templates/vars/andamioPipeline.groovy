// andamio ci-templates: the ML pipeline stage: dvc pull -> dvc repro (the quality gate fails
// the stage) -> dvc push -> metrics/params diff against the default branch, archived.
//
// Inputs (named arguments, all optional):
//   dir:           String - folder of the project inside the repository (default '.')
//   base:          String - ref the metrics and params are compared with (default 'origin/main')
//   archive:       boolean - archive reports/ as build artifacts (default true)
//   credentialsId: String - secret-text credential bound for the run, e.g. the database URL
//                  a SQL data source's ingest stage reads (default: none)
//   variable:      String - environment variable the secret is bound to (required with credentialsId)
void call(Map args = [:]) {
    String base = args.get('base', 'origin/main')
    boolean archive = args.get('archive', true)
    String credentialsId = args.get('credentialsId', '')
    String variable = args.get('variable', '')
    if (credentialsId && !(variable ==~ /[A-Za-z_][A-Za-z0-9_]*/)) {
        error "andamioPipeline: variable must be an environment variable name with credentialsId, got '${variable}'"
    }
    List secrets = credentialsId ? [string(credentialsId: credentialsId, variable: variable)] : []
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
    }
}
