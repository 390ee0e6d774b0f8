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
