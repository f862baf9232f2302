// Offline stand-in for Jenkins, for tests only: no Jenkins runtime can be had offline, so this
// script evaluates a declarative Jenkinsfile, or calls a shared-library step from vars/, with
// recording versions of the Jenkins steps, and prints what would run as JSON.
//
//   groovy harness.groovy jenkinsfile <Jenkinsfile> <vars-dir> <scenario>
//       scenario: change (a branch or pull request), main (a push to main), schedule (timer);
//       vars-dir: the library's vars/ (a vendored copy, for a Jenkinsfile that loads its own)
//   groovy harness.groovy step <vars-dir> <step-name> '<json named arguments>'
//   either one with a last argument '<json list of commands that fail>' (default: none fails)
//   groovy harness.groovy batch <requests.json>   (a JSON list of the argument lists above;
//       prints a JSON list of results: one JVM start for many checks)
//
// It proves what the files say (stages, conditions, make targets, credentials), not how a
// real Jenkins schedules them.
import groovy.json.JsonOutput
import groovy.json.JsonSlurper

class Credential {
    String id
}

// A shell step that fails, as Jenkins' `sh` does on a non-zero exit (hudson.AbortException).
class ScriptFailure extends RuntimeException {
    ScriptFailure(String message) {
        super(message)
    }
}

class EnvironmentBlock {
    Map env
    Map<String, Object> values = [:]

    void propertyMissing(String name, Object value) {
        values[name] = value
    }
}

class Recorder {
    List<Map> stages = []
    Map current = null
    List<String> commands = []
    List<String> credentials = []
    Map library = [:]
}

Map runOne(List<String> args) {
    Recorder rec = new Recorder()
    Binding binding = new Binding()
    GroovyShell shell = new GroovyShell(binding)
    String mode = args[0]
    String varsDir = mode == 'jenkinsfile' ? args[2] : args[1]
    String scenario = mode == 'jenkinsfile' ? args[3] : 'change'
    List<String> failing = args.size() > 4 ? new JsonSlurper().parseText(args[4]) as List : []

    Closure run = { Closure body -> body.call() }
    Closure record = { String command ->
        (rec.current == null ? rec.commands : rec.current.commands) << command.trim()
    }
    // when { ... } conditions: each condition pushes a boolean on the innermost frame.
    List<List<Boolean>> frames = []
    Closure evalAll = { Closure body ->
        frames << []
        body.call()
        List<Boolean> frame = frames.removeLast()
        frame.every { it }
    }

    binding.setVariable('env', [BRANCH_NAME: scenario == 'change' ? 'feature' : 'main'])
    binding.setVariable('any', 'any')
    ['agent', 'timeout', 'disableConcurrentBuilds', 'buildDiscarder', 'logRotator', 'cron', 'message', 'submitter']
        .each { name -> binding.setVariable(name, { Object... ignored -> null }) }
    ['pipeline', 'options', 'triggers', 'stages', 'steps', 'post', 'always'].each { name -> binding.setVariable(name, run) }
    // environment { X = '...'; Y = credentials('id') }: `env` readable, secret-text credentials
    // recorded like withCredentials' string() bindings, in the order written.
    binding.setVariable('credentials', { String id -> new Credential(id: id) })
    binding.setVariable('environment', { Closure body ->
        EnvironmentBlock block = new EnvironmentBlock(env: binding.getVariable('env') as Map)
        body.resolveStrategy = Closure.DELEGATE_FIRST
        body.delegate = block
        body.call()
        block.values.each { String name, Object value ->
            if (value instanceof Credential) {
                (rec.current == null ? rec.credentials : rec.current.credentials) << "string:${value.id}->${name}"
            }
        }
    })
    binding.setVariable('stage', { String name, Closure body ->
        rec.current = [name: name, commands: [], credentials: [], input: null, runs: true]
        try {
            body.call()
        } catch (ScriptFailure failure) {
            rec.current.failed = failure.message
        }
        rec.stages << rec.current
        rec.current = null
    })
    binding.setVariable('when', { Closure body -> rec.current.runs = evalAll(body) })
    binding.setVariable('not', { Closure body -> frames.last() << !evalAll(body) })
    binding.setVariable('allOf', { Closure body -> frames.last() << evalAll(body) })
    binding.setVariable('branch', { String name -> frames.last() << (binding.getVariable('env').BRANCH_NAME == name) })
    binding.setVariable('triggeredBy', { String cause -> frames.last() << (scenario == 'schedule' && cause == 'TimerTrigger') })
    binding.setVariable('input', { Closure body ->
        Map input = [:]
        body.resolveStrategy = Closure.DELEGATE_FIRST
        body.delegate = [message: { String m -> input.message = m }, submitter: { String s -> input.submitter = s }]
        body.call()
        rec.current.input = input
    })
    binding.setVariable('sh', { Object command ->
        String script = (command instanceof Map ? command.script : command).trim()
        record(script)
        if (script in failing) {
            throw new ScriptFailure("script returned exit code 2: ${script}")
        }
    })
    binding.setVariable('dir', { String path, Closure body -> body.call() })
    binding.setVariable('withEnv', { List<String> vars, Closure body ->
        vars.each { record("export ${it}") }
        body.call()
    })
    binding.setVariable('string', { Map spec -> "string:${spec.credentialsId}->${spec.variable}" })
    binding.setVariable('usernamePassword', { Map spec ->
        "usernamePassword:${spec.credentialsId}->${spec.usernameVariable}:${spec.passwordVariable}"
    })
    binding.setVariable('withCredentials', { List bindings, Closure body ->
        bindings.each { (rec.current == null ? rec.credentials : rec.current.credentials) << it }
        body.call()
    })
    binding.setVariable('archiveArtifacts', { Map spec -> record("archive ${spec.artifacts}") })
    // Shared-library resources (resources/ of the library): read from next to vars/, written
    // files recorded by path.
    binding.setVariable('libraryResource', { String path ->
        File resource = new File(new File(varsDir).parentFile, "resources/${path}")
        if (!resource.file) {
            throw new IllegalArgumentException("libraryResource: no resources/${path} in the library")
        }
        resource.text
    })
    binding.setVariable('writeFile', { Map spec -> record("writeFile ${spec.file}") })
    // The library loaded from the repository itself: library(identifier:, retriever: legacySCM(...)).
    binding.setVariable('scm', 'scm')
    binding.setVariable('legacySCM', { Map spec -> [scm: spec.scm, libraryPath: spec.libraryPath] })
    binding.setVariable('library', { Map spec -> rec.library = [ref: spec.identifier] + (spec.retriever as Map) })
    binding.setVariable('error', { String message -> throw new IllegalArgumentException(message) })

    // Library steps: vars/<name>.groovy, loaded on first use, like Jenkins does.
    new File(varsDir).eachFileMatch(~/.*\.groovy/) { File file ->
        String name = file.name - '.groovy'
        binding.setVariable(name, { Object... callArgs ->
            Script step = shell.parse(file)
            step.invokeMethod('call', callArgs.length ? callArgs : [[:]] as Object[])
        })
    }

    Map result
    try {
        if (mode == 'jenkinsfile') {
            String text = new File(args[1]).text
            def library = (text =~ /(?m)^@Library\('([^']+)'\) _$/)
            if (library.find()) {
                rec.library = [ref: library.group(1)]
            }
            shell.evaluate(text.replaceAll(/(?m)^@Library\('[^']+'\) _$/, ''))
            result = [library: rec.library, stages: rec.stages]
        } else {
            Map named = new JsonSlurper().parseText(args[3]) as Map
            binding.getVariable(args[2]).call(named)
            result = [commands: rec.commands, credentials: rec.credentials]
        }
    } catch (IllegalArgumentException failure) {
        result = [error: failure.message, commands: rec.commands]
    } catch (ScriptFailure failure) {
        result = [failed: failure.message, commands: rec.commands, credentials: rec.credentials]
    }
    return result
}

if (args[0] == 'batch') {
    List<List<String>> requests = new JsonSlurper().parse(new File(args[1])) as List
    println JsonOutput.toJson(requests.collect { runOne(it) })
} else {
    println JsonOutput.toJson(runOne(args as List))
}
