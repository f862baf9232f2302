// andamio ci-templates: the ML pipeline stage: dvc pull -> dvc repro (the quality gate fails
// the stage) -> dvc push -> metrics/params diff against the default branch, archived.
//
// Inputs (named arguments, all optional):
//   dir:      String - folder of the project inside the repository (default '.')
//   base:     String - ref the metrics and params are compared with (default 'origin/main')
//   archive:  boolean - archive reports/ as build artifacts (default true)
void call(Map args = [:]) {
    String base = args.get('base', 'origin/main')
    boolean archive = args.get('archive', true)
    dir(args.get('dir', '.')) {
        try {
            withEnv(["BASE=${base}"]) {
                sh 'make restore pipeline push metrics-diff'
            }
        } finally {
            if (archive) {
                archiveArtifacts artifacts: 'reports/**', allowEmptyArchive: true
            }
        }
    }
}
