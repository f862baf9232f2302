// andamio ci-templates: the setup unit (`make ci-setup`); call it in the first stage, every
// later stage reuses the workspace (and so the .venv, the uv and DVC caches).
//
// Inputs (named arguments, all optional):
//   dir: String - folder of the project inside the repository (default '.')
void call(Map args = [:]) {
    dir(args.get('dir', '.')) {
        sh 'make ci-setup'
    }
}
