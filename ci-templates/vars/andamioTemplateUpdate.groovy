// andamio ci-templates: the scheduled template update (`make template-update`); when the
// project is behind the template, the change is pushed to a branch for review.
//
// Inputs (named arguments):
//   credentialsId: String, required - git username/password credential allowed to push
//   branch:        String - branch the update is pushed to (default 'template-update')
//   dir:           String - folder of the project inside the repository (default '.')
void call(Map args = [:]) {
    String credentialsId = args.get('credentialsId', '')
    if (!credentialsId) {
        error 'andamioTemplateUpdate: credentialsId is required'
    }
    String branch = args.get('branch', 'template-update')
    dir(args.get('dir', '.')) {
        sh 'make template-update'
        withCredentials([gitUsernamePassword(credentialsId: credentialsId, gitToolName: 'Default')]) {
            withEnv(["UPDATE_BRANCH=${branch}"]) {
                sh '''
                    if [ -n "$(git status --porcelain)" ]; then
                      git switch -c "$UPDATE_BRANCH"
                      git -c user.name="andamio bot" -c user.email="ci@users.noreply.invalid" \\
                        commit -qam "Update from the andamio template"
                      git push --force origin "HEAD:$UPDATE_BRANCH"
                    else
                      echo "up to date with the template"
                    fi
                '''
            }
        }
    }
}
