import logging

from mlops_ci.masking import MaskingFilter, mask, secret_values


def test_env_secrets_are_masked():
    env = {"GITHUB_TOKEN": "ghs_abcdefghijklmnopqrstuvwxyz0123", "ARGO_TOKEN": "Bearer-xyz-123456",
           "PATH": "/usr/bin", "SHORT_TOKEN": "abc"}
    text = "token ghs_abcdefghijklmnopqrstuvwxyz0123 and Bearer-xyz-123456 in /usr/bin abc"
    out = mask(text, env)
    assert "ghs_" not in out and "Bearer-xyz" not in out
    assert "/usr/bin" in out and out.endswith("abc")  # short values and non-secrets stay
    assert secret_values(env) == ("ghs_abcdefghijklmnopqrstuvwxyz0123", "Bearer-xyz-123456")


def test_token_shapes_are_masked_without_env():
    for text in ("ghp_" + "A" * 36, "github_pat_" + "B" * 40, "Authorization: Bearer abc.def.ghijkl",
                 "AKIAABCDEFGHIJKLMNOP"):
        assert mask(f"x {text} y", {}) != f"x {text} y", text


def test_url_passwords_are_masked():
    assert mask("push to https://bot:hunter22@github.com/o/r.git", {}) == "push to https://bot:***@github.com/o/r.git"


def test_logging_filter_masks_rendered_message():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "using %s", ("ghp_" + "C" * 36,), None)
    MaskingFilter().filter(record)
    assert record.getMessage() == "using ***"


def test_masking_stream_masks_everything_written(monkeypatch):
    import io

    from mlops_ci.masking import MaskingStream

    monkeypatch.setenv("DEPLOY_TOKEN", "tok-123456789")
    buf = io.StringIO()
    stream = MaskingStream(buf)
    stream.write("library says tok-123456789\n")
    stream.flush()
    assert buf.getvalue() == "library says ***\n"


def test_credential_names_are_secrets_and_ids_paths_and_users_are_not():
    env = {name: f"value-of-{name.lower()}" for name in (
        "AZURE_STORAGE_CONNECTION_STRING", "DEPLOY_KEY", "GH_PAT", "OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY",
        "SSH_PRIVATE_KEY", "STORAGE_SAS", "SESSION_COOKIE", "GPG_PASSPHRASE", "MLFLOW_TRACKING_PASSWORD")}
    plain = {name: f"value-of-{name.lower()}" for name in (
        "MLFLOW_TRACKING_USERNAME", "AWS_ACCESS_KEY_ID", "GOOGLE_APPLICATION_CREDENTIALS_FILE", "KEY_PATH",
        "TOKEN_URL_BASE", "MONKEY")}
    values = set(secret_values({**env, **plain}))
    assert values == set(env.values())


def test_a_secret_is_masked_in_the_forms_other_layers_write_it():
    import html
    import json
    from urllib.parse import quote

    secret = 'S3cret!pass#2024"\\ö_x'
    env = {"MY_SERVICE_PASSWORD": secret}
    for form in (secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
                 repr(secret)[1:-1], quote(secret, safe=""), html.escape(secret, quote=False),
                 "S3cret\\!pass\\#2024\"\\\\ö\\_x"):
        assert mask(f"<{form}>", env) == "<***>", form


def test_credentials_in_urls_and_query_strings_are_masked():
    cases = {
        "https://bot:pa/ss@word@mlflow.example/api": "https://bot:***@mlflow.example/api",
        "https://ghp0123456789abcdefXYZ@github.com/o/r.git": "https://***@github.com/o/r.git",
        "https://acct.blob.core.windows.net/c/m.pt?sv=2022&sig=AbC%2Bdef%3D": "https://acct.blob.core.windows.net/"
                                                                            "c/m.pt?sv=2022&***",
        "https://api.example/x?access_token=eyJhbGciOi&page=2": "https://api.example/x?***&page=2",
    }
    for text, masked in cases.items():
        assert mask(text, {}) == masked, text
    assert mask("https://mlflow.example:5000/#/models", {}) == "https://mlflow.example:5000/#/models"


def test_strip_credentials_keeps_only_scheme_host_and_path():
    from mlops_ci.masking import strip_credentials

    assert strip_credentials("https://u:p/w@d@mlflow.example/api?token=x#y") == "https://mlflow.example/api"
    assert strip_credentials("https://tok@mlflow.example") == "https://mlflow.example"
    assert strip_credentials("http://mlflow.example:5000/models@v1") == "http://mlflow.example:5000/models@v1"
    assert strip_credentials("sqlite:///tmp/mlflow.db") == "sqlite:///tmp/mlflow.db"
