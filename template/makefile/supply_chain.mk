# --- Supply chain: secrets scan and dependency audit ----------------------------------------
.PHONY: secrets audit

AUDIT_PIN := pip-audit==2.10.1
AUDIT_VENV := build/audit-venv
# pip-audit asks an advisory service about every pinned package.  Without one in reach
# (air-gapped), point it at an internal OSV mirror: AUDIT_ARGS="-s osv --osv-url <url>".
AUDIT_ARGS ?=

secrets: $(STAMP) ## Scan the files tracked by git for secrets (detect-secrets; accepted ones: .secrets.baseline)
	git ls-files -z | xargs -0 detect-secrets-hook --baseline .secrets.baseline

audit: $(STAMP) ## Audit the installed dependencies for known vulnerabilities (pip-audit; exit 2: service unreachable)
	@mkdir -p build
	@$(if $(UV),uv pip freeze --quiet --python $(VENV)/bin/python,$(VENV)/bin/python -m pip freeze) \
	  --exclude-editable > build/requirements-audit.txt
	@test -x $(AUDIT_VENV)/bin/pip-audit || \
	  { $(call make_venv,$(AUDIT_VENV)) && $(call pip_install,$(AUDIT_VENV)/bin/python,$(AUDIT_PIN)); }
	@rc=0; $(AUDIT_VENV)/bin/pip-audit --strict --no-deps --disable-pip --progress-spinner off \
	  -r build/requirements-audit.txt $(AUDIT_ARGS) > build/audit.log 2>&1 || rc=$$?; \
	grep -v '^WARNING' build/audit.log || true; \
	if [ $$rc -ne 0 ] && grep -qE 'could not be audited|ConnectionError|Max retries' build/audit.log; then \
	  echo "audit: NOT DONE: the advisory service cannot be reached from here; nothing was checked." >&2; \
	  echo "audit: set AUDIT_ARGS to an advisory mirror (see the Makefile) and run it again." >&2; \
	  exit 2; \
	fi; \
	exit $$rc
