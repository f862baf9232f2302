"""Allow ``python -m <package> <stage>``."""

import sys

from .cli import main

code = main()
if sys.argv[1:2] == ["batch-score"]:
    # A finished batch run (its output in place, Spark stopped, every file closed) ends here:
    # the interpreter's teardown of the modules it loaded (MLflow, scikit-learn, pandas,
    # pyspark) takes about half a second and does nothing the run needs.  The exit handlers
    # run and the output is flushed, as at a normal exit.
    import atexit
    import os

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
