"""Bulk decoding (mlops_ci.monitor.bulk) against the one-at-a-time decoders it stands in for: base64
texts decoded in one call as base64.b64decode(validate=True) decodes each, and refused where it refuses."""

from __future__ import annotations

import base64
import binascii
import random
import sys

import pyarrow as pa
import pytest

from mlops_ci.monitor.objects import b64_bulk, read_records


@pytest.fixture(params=["pybase64", "binascii"])
def decoder(request, monkeypatch):
    """Both strict decoders: pybase64's where installed, binascii's where it is not."""
    if request.param == "binascii":
        monkeypatch.setitem(sys.modules, "pybase64", None)
    else:
        pytest.importorskip("pybase64")
    return request.param


def _each(texts):
    out = []
    for t in texts:
        try:
            out.append(base64.b64decode(t, validate=True) if t else b"")
        except (binascii.Error, ValueError):
            return None
    return out


def test_bulk_base64_decodes_as_b64decode_does_every_length_and_padding(decoder):
    rng = random.Random(3)
    payloads = [bytes(rng.randrange(256) for _ in range(n)) for n in [0, 1, 2, 3, 4, 5, 6, 7, 100, 1001] * 5]
    rng.shuffle(payloads)
    texts = [base64.b64encode(p).decode() for p in payloads]
    for kind in (pa.string(), pa.large_string(), pa.binary()):
        got = b64_bulk(pa.array(texts, type=kind))
        assert got is not None and got.to_pylist() == payloads
    sliced = pa.array(texts)[7:31]  # an array with an offset into its buffers
    assert b64_bulk(sliced).to_pylist() == payloads[7:31]
    assert b64_bulk(pa.chunked_array([texts[:10], texts[10:]])).to_pylist() == payloads
    assert b64_bulk(pa.array([None, texts[1]])).to_pylist() == [b"", payloads[1]]


@pytest.mark.parametrize("bad", ["QQ", "QQ=", "QQ===", "Q=Q=", "=QQQ", "QU JD", "QUJD\n", "QR==QUJD", "QUJ\u00e9",
                                 "A===", "===="])
def test_bulk_base64_refuses_what_b64decode_refuses(bad, decoder):
    texts = [base64.b64encode(b"ok").decode(), bad, base64.b64encode(b"fine!").decode()]
    assert _each(texts) is None  # the premise: the exact decoder refuses it
    assert b64_bulk(pa.array(texts)) is None


def test_what_the_bulk_path_leaves_to_b64decode_is_decoded_by_it():
    from datetime import UTC, datetime

    texts = ["QUJD====", base64.b64encode(b"x").decode()]  # excess padding: b64decode accepts it, the bulk path defers
    assert b64_bulk(pa.array(texts)) is None and _each(texts) == [b"ABC", b"x"]
    doc = ",".join(f'{{"id":"{i}","reqType":"org.kubeflow.serving.inference.response","bytes":"{t}"}}'
                   for i, t in enumerate(texts))
    assert read_records(f"[{doc}]".encode(), "json", datetime.now(UTC)).bodies.to_pylist() == [b"ABC", b"x"]


def test_non_canonical_padding_bits_decode_as_b64decode_does():
    texts = ["QR==", "QUK=", "QUJD"]  # unused bits set: accepted by b64decode, so by the bulk path too
    assert b64_bulk(pa.array(texts)).to_pylist() == _each(texts)


def test_an_object_with_one_bad_text_names_that_record():
    from datetime import UTC, datetime

    good = base64.b64encode(b'{"outputs":[]}').decode()
    doc = (f'[{{"id":"a","reqType":"org.kubeflow.serving.inference.response","bytes":"{good}"}},'
           '{"id":"b","reqType":"org.kubeflow.serving.inference.response","bytes":"not base64!"}]')
    with pytest.raises(ValueError, match="record b: bytes are not base64"):
        read_records(doc.encode(), "json", datetime.now(UTC))
    ok = read_records(doc.replace("not base64!", good).encode(), "json", datetime.now(UTC))
    assert ok.bodies.to_pylist() == [b'{"outputs":[]}'] * 2


def _bodies_near(body: bytes, rng: random.Random, n: int) -> list[bytes]:
    """Bodies like ``body``: its values changed, and some with a byte inserted, deleted or swapped,
    a bracket, quote, comma or escape planted, or two inputs' names swapped."""
    import json

    doc = json.loads(body)
    out = []
    for i in range(n):
        d = json.loads(body)
        for item in d["inputs"]:
            if item["datatype"] == "BYTES":
                item["data"] = [rng.choice(["a", "b c", "[x]", "x]", "é", "q,r", "", "cat_7"])]
            else:
                item["data"] = [rng.choice([0, -0.5, 1e-7, 12345678901, 3.25, -17, 1e300])]
        if i % 7 == 3:
            d["inputs"][0]["name"], d["inputs"][1]["name"] = doc["inputs"][1]["name"], doc["inputs"][0]["name"]
        text = json.dumps(d, separators=(",", ":"), ensure_ascii=i % 2 == 0).encode()
        if i % 3 == 1:
            pos = rng.randrange(len(text))
            text = rng.choice([text[:pos] + rng.choice([b"[", b"]", b'"', b",", b"\\", b" ", b"0", b"-"]) + text[pos:],
                               text[:pos] + text[pos + 1:],
                               text[:pos] + text[pos + 1:pos + 2] + text[pos:pos + 1] + text[pos + 2:]])
        out.append(text)
    return out


def test_what_the_bulk_decoder_accepts_it_reads_as_the_exact_decoder_does():
    import math

    import pandas as pd

    from mlops_ci.monitor.bulk import decode, request_template
    from mlops_ci.monitor.traffic import DecodeError, request_frame
    from mlops_ci.runtime import v2

    body = v2.request_json(pd.DataFrame({"a": [1.5], "b": ["x"], "c": [2], "d": ["y z"]})).encode()
    template = request_template(body)
    bodies = _bodies_near(body, random.Random(11), 3000)
    matched, columns = decode(pa.array(bodies, type=pa.binary()), template)
    assert 500 < matched.sum() < len(bodies) - 500  # many fit, and many planted changes do not
    rows = iter(zip(*columns.values()))
    for fits, b in zip(matched.tolist(), bodies):
        if not fits:
            continue
        got = dict(zip(columns, next(rows)))
        try:
            exact = request_frame(b)
        except DecodeError as err:
            raise AssertionError(f"the bulk path read a body the exact decoder refuses: {b!r} ({err})") from err
        assert list(exact.columns) == list(columns), b
        for name, value in got.items():
            want = exact[name].iloc[0]
            assert value == want or (isinstance(value, float) and math.isclose(value, float(want))), (b, name)
