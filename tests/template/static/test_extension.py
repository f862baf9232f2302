"""Unit tests of hooks/extension.py: derived values and answer validators."""

from __future__ import annotations

import jinja2
import pytest
from support import load_hook

ext = load_hook("extension.py")


@pytest.mark.parametrize(
    ("name", "slug", "package"),
    [
        ("Breast Cancer Classifier", "breast-cancer-classifier", "breast_cancer_classifier"),
        ("  Señal ÑAndú v2 ", "senal-nandu-v2", "senal_nandu_v2"),
        ("3D Model!", "3d-model", "ml_3d_model"),
        ("a--b__c", "a-b-c", "a_b_c"),
    ],
)
def test_slug_and_package_name_derive_from_project_name(name, slug, package):
    assert ext.slugify(name) == slug
    assert ext.to_package_name(name) == package
    assert ext.check_package_name(ext.to_package_name(name)) == ""


def test_default_dataset_follows_the_task():
    assert ext.default_dataset("classification") == "breast_cancer"
    assert ext.default_dataset("regression") == "diabetes"
    with pytest.raises(ValueError, match="unknown ml_task"):
        ext.default_dataset("clustering")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("class", "keyword"),
        ("match", "keyword"),
        ("my-pkg", "not a valid Python identifier"),
        ("1abc", "not a valid Python identifier"),
        ("MyPkg", "lower case"),
        ("_private", "underscore"),
    ],
)
def test_bad_package_names_are_refused_with_a_reason(value, message):
    assert message in ext.check_package_name(value)


@pytest.mark.parametrize(
    ("check", "good", "bad", "message"),
    [
        ("check_project_name", "Churn Model", "   ", "must not be empty"),
        ("check_project_name", "Churn Model", "!!!", "ASCII letter or digit"),
        ("check_email", "team@corp.example", "team@", "not an e-mail address"),
        ("check_email", "a.b+c@x.io", "no at sign", "not an e-mail address"),
        ("check_model_name", "churn-model_v2", "-leading", "must start with a letter or digit"),
        ("check_model_name", "churn.model", "has space", "must start with a letter or digit"),
        (
            "check_tracking_uri",
            "http://mlflow.internal:5000",
            "mlflow.internal:5000",
            "not an MLflow tracking URI",
        ),
        ("check_tracking_uri", "sqlite:///mlflow.db", "http://", "no valid host name"),
        ("check_remote_url", "s3://bucket/path", "ftp://host/x", "unsupported scheme"),
        ("check_remote_url", "/srv/dvc", "", "must not be empty"),
        ("check_data_path", "data/raw/customers.csv", "customers.csv", "must be a file under data/raw/"),
        ("check_data_path", "data/raw/t.parquet", "data/raw/../secret.csv", "must be a file under data/raw/"),
        ("check_data_path", "data/raw/t.pq", "data/raw/table.xlsx", "must end in .csv, .parquet or .pq"),
        ("check_data_path", "data/raw/t.csv", "data/raw/my table.csv", "must not contain spaces"),
        ("check_column_name", "churned", "  ", "must name the label column"),
        ("check_column_name", "Sale Price", 'a"b', "must be on one line, without quotes"),
        ("check_env_name", "WAREHOUSE_URL", "database-url", "environment variable name"),
        ("check_sql_query", "SELECT * FROM t", "", "must not be empty"),
        ("check_sql_query", "with x as (select 1) select * from x", "DROP TABLE t", "must be a SELECT"),
        ("check_sql_query", "SELECT 1;", "SELECT 1; DELETE FROM t", "single statement"),
        ("check_ci_library", "platform/andamio-ci", "andamio-ci", "must be group/project"),
        ("check_ci_library", "group/sub/ci", "group /ci", "must be group/project"),
        ("check_image_repository", "registry.corp.example/team/model", "Team/Model", "lower-case image name"),
        ("check_image_repository", "ghcr.io/team/model", "https://ghcr.io/x", "no scheme"),
        ("check_image_repository", "localhost:5000/team/model", "reg.example/model:v1", "tag or digest"),
        (
            "check_git_url",
            "git@git.corp.example:ml/churn.git",
            "git.corp.example/ml/churn",
            "https://, ssh://",
        ),
        ("check_git_url", "ssh://git.corp.example/ml/churn.git", "https://x/a b.git", "https://, ssh://"),
        (
            "check_mirror_url",
            "https://mirror.corp.example/simple",
            "mirror.corp.example/simple",
            "http(s) URL",
        ),
        ("check_mirror_url", "http://10.0.0.5:8080/debian", "", "required in air-gapped mode"),
        (
            "check_registry_prefix",
            "registry.corp.example/mirror",
            "https://registry.corp.example",
            "no scheme",
        ),
        ("check_registry_prefix", "registry.corp.example", "", "required in air-gapped mode"),
        (
            "check_template_source",
            "https://git.corp.example/platform/andamio.git",
            "",
            "required in air-gapped",
        ),
        ("check_template_source", "/srv/mirrors/andamio", "mirrors/andamio", "absolute path"),
    ],
)
def test_validators_accept_good_and_explain_bad(check, good, bad, message):
    fn = getattr(ext, check)
    assert fn(good) == "", f"{check} refused the valid value {good!r}"
    assert message in fn(bad), f"{check}({bad!r}) should explain {message!r}"


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("../remote", "../../remote"),
        ("storage", "../storage"),
        ("/srv/dvc", "/srv/dvc"),
        ("~/dvc", "~/dvc"),
        ("s3://bucket/key", "s3://bucket/key"),
    ],
)
def test_dvc_config_url_is_relative_to_the_dvc_folder(url, stored):
    assert ext.dvc_config_url(url) == stored


@pytest.mark.parametrize(
    ("family", "task", "estimator"),
    [
        ("linear", "classification", "logistic_regression"),
        ("linear", "regression", "ridge"),
        ("hist_gradient_boosting", "classification", "hist_gradient_boosting"),
        ("xgboost", "regression", "xgboost"),
    ],
)
def test_estimator_name_follows_family_and_task(family, task, estimator):
    assert ext.estimator_name(family, task) == estimator


def test_unknown_model_family_is_refused():
    with pytest.raises(ValueError, match="unknown model_family"):
        ext.estimator_name("svm", "classification")


def test_extension_registers_every_public_filter():
    env = jinja2.Environment(extensions=[ext.AndamioExtension])
    public = {n for n in ext.__all__ if n not in {"AndamioExtension", "DATASETS"}}
    assert public <= set(env.filters), f"missing filters: {public - set(env.filters)}"
    assert env.from_string("{{ 'My Model' | slugify }}").render() == "my-model"
