# --- Kubeflow Pipelines: orchestration/kubeflow/pipeline.py compiled to its IR YAML ----------
# kfp lives in a venv of its own (its pins would downgrade the project's protobuf and
# requests); the compiled pipeline names the image PIPELINE_IMAGE.
.PHONY: kfp-compile kfp-check
KFP_PIN := kfp==2.17.3
KFP_VENV ?= build/kfp-venv
KFP_IR := orchestration/kubeflow/pipeline.yaml
# The images pin the same kfp (their components run it).
IMAGE_BUILD_ARGS += --build-arg KFP_PIN=$(KFP_PIN)

$(KFP_VENV)/bin/kfp:
	@$(call make_venv,$(KFP_VENV))
	@$(call pip_install,$(KFP_VENV)/bin/python,$(KFP_PIN))

kfp-compile: $(KFP_VENV)/bin/kfp ## Compile the Kubeflow pipeline to orchestration/kubeflow/pipeline.yaml (commit it)
	PIPELINE_IMAGE="$(PIPELINE_IMAGE)" $(KFP_VENV)/bin/python orchestration/kubeflow/pipeline.py $(KFP_IR)

kfp-check: $(KFP_VENV)/bin/kfp ## Fail when the committed pipeline.yaml differs from a fresh compile of pipeline.py
	@mkdir -p build/kubeflow
	@PIPELINE_IMAGE="$(PIPELINE_IMAGE)" $(KFP_VENV)/bin/python orchestration/kubeflow/pipeline.py build/kubeflow/pipeline.yaml >/dev/null
	@diff -u $(KFP_IR) build/kubeflow/pipeline.yaml \
	  || { echo "kfp-check: $(KFP_IR) is stale: run make kfp-compile and commit it" >&2; exit 1; }
	@echo "kfp-check: $(KFP_IR) matches pipeline.py"
