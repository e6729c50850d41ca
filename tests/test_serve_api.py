"""gated serve's JSON API on the tour's tiny models (real, cut-down data): the numbers are trace()'s and
the model's own, every error is one JSON line, and the queue refuses with 503 only past its bound."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from gated.cli import main
from gated.reading import read
from gated.runs import load_run
from gated.serve import analysis, matches
from gated.serve.app import CSP, TEXT_LIMIT, create_app
from gated.serve.catalog import load_all
from gated.serve.queue import Busy, WorkQueue

with warnings.catch_warnings():  # starlette 1.10 prefers httpx2 for its test client; httpx is what we have
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

REVIEW = "the tea was not what i expected but the price was great and it came fast"
HOSTILE = "<script>alert(1)</script> and <img src=x onerror=alert(2)> tasty"


def _quiet(message: str) -> None:
    pass


@pytest.fixture(scope="module")
def models(report: Path) -> Path:
    return report.parent / "models"


@pytest.fixture(scope="module")
def served(models: Path):
    return load_all([models], log=_quiet)


@pytest.fixture(scope="module")
def client(served):
    with TestClient(create_app(served, log=_quiet), raise_server_exceptions=False) as c:
        yield c


def _decode(matrix: dict) -> np.ndarray:
    flat = np.frombuffer(base64.b64decode(matrix["float32"]), dtype="<f4")
    return flat.reshape(matrix["shape"])


def _trace(models: Path, run: str, tokens: list[str]) -> tuple:
    """The oracle: the run's module traced directly, top layer, forward direction."""
    task, model, _ = load_run(models / run)
    ids = torch.tensor([[task.vocab.index(t) for t in tokens]])
    with torch.no_grad():
        trace = model.rnn.trace(model.embed(ids))
    return task, model, {name: trace.of(name, layer=-1)[:, 0].numpy() for name in trace.names}


# -- what the API reports -----------------------------------------------------------------------------


def test_runs_lists_the_text_runs_with_their_metrics(client, models):
    runs = client.get("/api/runs").json()["runs"]
    assert [r["name"] for r in runs] == ["sentiment-rnn", "sentiment-lstm", "sentiment-gru", "charlm-ln-lstm"]
    for run in runs:  # the adding runs in the same folder read no text, so they are not served
        summary = json.loads((models / run["name"] / "metrics.json").read_text())
        assert (run["task"], run["model"], run["metric"], run["value"]) == (
            summary["task"], summary["model"], summary["metric"], summary["value"])


@pytest.mark.parametrize("run", ["sentiment-rnn", "sentiment-lstm", "sentiment-gru"])
def test_read_gives_traces_numbers_and_the_running_prediction(client, models, run):
    answer = client.post("/api/read", json={"run": run, "text": REVIEW, "units": "all"}).json()
    task, model, steps = _trace(models, run, answer["tokens"])
    assert answer["tokens"] == task.vocab.tokenize(REVIEW)
    expected_gates = {"rnn": ["hidden"], "lstm": ["input", "forget", "output", "candidate", "cell", "hidden"],
                      "gru": ["reset", "update", "candidate", "hidden"]}[run.split("-")[1]]
    assert [g["name"] for g in answer["gates"]] == expected_gates
    for gate in expected_gates:
        assert np.array_equal(_decode(answer["values"][gate]), steps[gate])  # float32, bit for bit
        assert _decode(answer["mean"][gate]) == pytest.approx(steps[gate].mean(1), abs=1e-6)
    reading = read(task, model, REVIEW)  # explain's reading: the model run on every prefix
    assert answer["prediction"] == pytest.approx(reading.prediction, abs=1e-5)
    assert (answer["verdict"], answer["target"]) == (reading.verdict, reading.target)
    assert answer["confidence"] == pytest.approx(reading.confidence, abs=1e-5)
    assert answer["telling"] == reading.units


def test_read_sends_the_telling_units_by_default_and_json_on_request(client):
    small = client.post("/api/read", json={"run": "sentiment-lstm", "text": REVIEW}).json()
    full = client.post("/api/read", json={"run": "sentiment-lstm", "text": REVIEW, "units": "all"}).json()
    listed = client.post("/api/read", json={"run": "sentiment-lstm", "text": REVIEW, "units": [3, 1],
                                            "encoding": "json"}).json()
    assert small["units"] == small["telling"]
    for gate in ("forget", "cell"):
        everything = _decode(full["values"][gate])
        assert np.array_equal(_decode(small["values"][gate]), everything[:, small["units"]])
        assert np.array_equal(np.array(listed["values"][gate]["values"], dtype=np.float32), everything[:, [3, 1]])


def test_the_units_listed_per_word_are_those_whose_loss_moves_the_verdict_most(client, models):
    answer = client.post("/api/read", json={"run": "sentiment-gru", "text": REVIEW}).json()
    _, model, steps = _trace(models, "sentiment-gru", answer["tokens"])
    w = model.head.weight.detach().numpy()

    def margin(hidden) -> float:  # the verdict's logit difference, had the text ended here
        return float((w[1] - w[0]) @ hidden)

    for i in (0, 4, len(answer["tokens"]) - 1):
        h = steps["hidden"][i]
        moves = {u: margin(h) - margin(np.where(np.arange(len(h)) == u, 0, h)) for u in range(len(h))}
        ranked = sorted(moves, key=lambda u: -abs(moves[u]))[:5]
        assert answer["top"]["units"][i] == ranked
        # A weight's sign says which way the unit pushes: towards the class followed (target) when positive.
        weights = _decode(answer["top"]["weights"])[i]
        assert np.sign(weights) == pytest.approx(np.sign([moves[u] for u in ranked]))


def test_dropping_a_word_reads_the_text_without_it(client):
    tokens = client.post("/api/read", json={"run": "sentiment-lstm", "text": REVIEW}).json()["tokens"]
    without = client.post("/api/read", json={"run": "sentiment-lstm", "text": REVIEW, "drop": [3]}).json()
    shorter = " ".join(tokens[:3] + tokens[4:])
    direct = client.post("/api/read", json={"run": "sentiment-lstm", "text": shorter}).json()
    assert without["dropped"] == [3] and without["tokens"] == direct["tokens"]
    assert without["prediction"] == direct["prediction"]
    assert without["values"] == direct["values"]


def test_a_character_model_reads_every_character(client, models):
    text = "ROMEO:\nWhat, ho! " + HOSTILE
    answer = client.post("/api/read", json={"run": "charlm-ln-lstm", "text": text}).json()
    assert "".join(answer["tokens"]) == text[:300]
    task, model, _ = load_run(models / "charlm-ln-lstm")
    ids = [task.vocab.index(c) for c in answer["tokens"]]
    with torch.no_grad():
        probabilities = model(torch.tensor([ids]))[0][0].softmax(-1).numpy()
    assert answer["prediction"][0] is None  # nothing predicted the first character
    assert answer["prediction"][1:] == pytest.approx(probabilities[np.arange(len(ids) - 1), ids[1:]], abs=1e-5)
    probabilities[:, :2] = 0
    assert answer["expected"] == [task.vocab.tokens[i] for i in probabilities.argmax(1)]


def test_units_on_across_a_span_and_their_best_matches(client, served, models):
    threshold = 0.0
    answer = client.post("/api/match", json={"run": "sentiment-lstm", "text": REVIEW, "start": 2, "end": 4,
                                             "threshold": threshold}).json()
    tokens = served["sentiment-lstm"].task.vocab.tokenize(REVIEW)
    assert answer["span"] == tokens[2:5]
    _, _, steps = _trace(models, "sentiment-lstm", tokens)
    on = set(np.flatnonzero((steps["hidden"][2:5] > threshold).all(0)).tolist())
    assert set(answer["units"]) == on and on
    index = served["sentiment-lstm"].extra["index"]
    assert answer["matches"]
    for hit in answer["matches"]:  # each passage, read again from scratch, has the units on that were scored
        passage = index.documents[hit["passage"]]
        assert passage[hit["start"] : hit["start"] + 3] == hit["tokens"]
        _, _, again = _trace(models, "sentiment-lstm", passage)
        window = again["hidden"][hit["start"] : hit["start"] + 3].astype(np.float16)  # as the index keeps it
        theirs = set(np.flatnonzero((window > threshold).all(0)).tolist())
        assert hit["score"] == pytest.approx(len(theirs & on) / len(theirs | on), abs=1e-4)
    scores = [hit["score"] for hit in answer["matches"]]
    assert scores == sorted(scores, reverse=True)


def test_the_index_search_finds_a_planted_pattern_and_never_crosses_passages():
    rng = np.random.default_rng(0)
    hidden = rng.uniform(-1, -0.5, size=(30, 6)).astype(np.float16)
    hidden[15:18, [1, 4]] = 0.9  # passage 1 (tokens 10..19), positions 5..7: units 1 and 4 on
    hidden[8:12, [1, 4]] = 0.9  # on across the border of passages 0 and 1: windows there must not count
    index = matches.MatchIndex([list("abcdefghij")] * 3, hidden, np.array([0, 10, 20, 30]), 0.0)
    found = index.search([1, 4], 3, 0.5)
    assert (found[0]["passage"], found[0]["start"], found[0]["score"]) == (1, 5, 1.0)
    assert found[0]["tokens"] == list("fgh") and found[0]["before"] == list("abcde")
    assert not any(hit["passage"] == 0 and hit["start"] >= 8 for hit in found)


def test_compare_reads_the_text_through_every_model_of_the_task(client):
    readings = client.post("/api/compare", json={"run": "sentiment-lstm", "text": REVIEW}).json()["readings"]
    assert [r["model"] for r in readings] == ["rnn", "lstm", "gru"]
    for r in readings:
        alone = client.post("/api/read", json={"run": r["run"], "text": REVIEW}).json()
        assert r["prediction"] == alone["prediction"] and r["values"] == alone["values"]


def _events(body: str) -> list[tuple[str, dict]]:
    found = []
    for block in body.strip().split("\n\n"):
        name = re.search(r"^event: (.*)$", block, re.MULTILINE).group(1)
        found.append((name, json.loads(re.search(r"^data: (.*)$", block, re.MULTILINE).group(1))))
    return found


def test_generation_streams_what_the_task_would_sample(client, models):
    query = {"run": "charlm-ln-lstm", "prime": "ROMEO:\n", "temperature": 0.7, "length": 40, "seed": 5}
    response = client.get("/api/generate", params=query)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.text)
    assert events[0][0] == "start" and events[-1][0] == "end" and len(events) == 42
    chars = [data for name, data in events if name == "char"]
    task, model, _ = load_run(models / "charlm-ln-lstm")
    expected = task.generate(model, "ROMEO:\n", 40, 0.7, generator=torch.Generator().manual_seed(5))
    assert "ROMEO:\n" + "".join(c["char"] for c in chars) == expected
    assert all(0 < c["p"] <= 1 for c in chars)
    # the tour's Shakespeare model is a layer-norm LSTM: its normalised cell is shown too
    assert set(chars[0]["gates"]) == {"input", "forget", "output", "candidate", "cell", "cell_normalized", "hidden"}
    assert all(0 <= g <= 1 for c in chars for name in ("input", "forget") for g in c["gates"][name]["units"])
    again = _events(client.get("/api/generate", params=query).text)
    assert again[1:-1] == events[1:-1]  # the same seed, the same text and gates


# -- errors: one JSON line each, never a traceback ----------------------------------------------------


def test_text_over_the_limit_is_413_with_the_limit(client):
    response = client.post("/api/read", json={"run": "sentiment-lstm", "text": "a" * (TEXT_LIMIT + 1)})
    assert response.status_code == 413
    assert response.json()["limit"] == TEXT_LIMIT and "20,000" in response.json()["error"]
    huge = client.post("/api/read", content=b"{" + b" " * 200_000 + b"}", headers={"content-type": "application/json"})
    assert huge.status_code == 413 and "20,000" in huge.json()["error"]
    assert client.post("/api/read", json={"run": "sentiment-lstm", "text": "a " * (TEXT_LIMIT // 2)}).status_code == 200


@pytest.mark.parametrize("body, status, words", [
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2]", 400, "send an object"),
    (b'{"text": "good"}', 422, "'run' is missing"),
    (b'{"run": "sentiment-lstm"}', 422, "'text' is missing"),
    (b'{"run": "sentiment-lstm", "text": 5}', 422, "must be text"),
    (b'{"run": "sentiment-lstm", "text": "!!!"}', 422, "no tokens"),
    (b'{"run": "sentiment-lstm", "text": "good", "units": [999]}', 422, "unit numbers"),
    (b'{"run": "sentiment-lstm", "text": "good", "encoding": "xml"}', 422, "encoding"),
    (b'{"run": "sentiment-lstm", "text": "good", "drop": [-1]}', 422, "token positions"),
])
def test_bad_requests_get_a_clear_4xx(client, body, status, words):
    response = client.post("/api/read", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert words in response.json()["error"] and "Traceback" not in response.text


@pytest.mark.parametrize("name", ["nope", "../sentiment-lstm", "sentiment-lstm/../charlm-ln-lstm", "/etc/passwd",
                                  "..", "sentiment-lstm/", "adding-gru-5"])
def test_unknown_runs_and_paths_are_404(client, models, name):
    for response in (client.post("/api/read", json={"run": name, "text": "good"}),
                     client.get("/api/generate", params={"run": name})):
        assert response.status_code == 404 and "GET /api/runs" in response.json()["error"]
    absolute = str((models / "sentiment-lstm").resolve())
    assert client.post("/api/read", json={"run": absolute, "text": "good"}).status_code == 404


def test_other_errors_are_json_without_traceback(client, monkeypatch):
    assert client.get("/api/nothing").status_code == 404 and "error" in client.get("/api/nothing").json()
    assert client.get("/api/read").status_code == 405 and "error" in client.get("/api/read").json()
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/app.py").status_code == 404
    span = client.post("/api/match", json={"run": "sentiment-lstm", "text": "good tea", "start": 1, "end": 5})
    assert span.status_code == 422 and "2 tokens" in span.json()["error"]
    assert client.get("/api/generate", params={"run": "sentiment-lstm"}).status_code == 422
    assert client.get("/api/generate", params={"run": "charlm-ln-lstm", "temperature": "0"}).status_code == 422
    assert client.get("/api/generate", params={"run": "charlm-ln-lstm", "length": "x"}).status_code == 422

    def broken(*args):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(analysis, "analyse", broken)
    response = client.post("/api/read", json={"run": "sentiment-lstm", "text": "good"})
    assert response.status_code == 500
    assert response.json() == {"error": "the server failed on this request; its log says why"}


# -- the page's safety -----------------------------------------------------------------------------------


def test_every_response_carries_the_content_security_policy(client):
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP and "default-src 'none'" in CSP
    for path in ("/", "/static/app.js", "/api/runs", "/api/nothing"):
        assert client.get(path).headers["content-security-policy"] == CSP
    page = client.get("/").text
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.DOTALL)
    assert scripts and all('src="/static/' in attrs and not body.strip() for attrs, body in scripts)
    assert not re.search(r"\son\w+=", page) and "style=" not in page  # no inline handlers or styles
    assert "http" not in re.sub(r'href="\?lang=\w+"', "", page)  # nothing fetched from elsewhere


def test_the_page_script_never_writes_html(client):
    script = re.sub(r"//.*", "", client.get("/static/app.js").text)  # the comments may name what is avoided
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(", script)


def test_models_are_only_read(models, served, client):
    def digest():
        return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(models.rglob("*")) if p.is_file()}

    before = digest()
    client.post("/api/read", json={"run": "sentiment-gru", "text": REVIEW})
    client.get("/api/generate", params={"run": "charlm-ln-lstm", "length": 5})
    assert digest() == before


# -- load: a bounded queue -------------------------------------------------------------------------------


def test_the_queue_refuses_past_its_bound_and_serves_the_rest():
    async def scenario():
        queue = WorkQueue(workers=1, waiting=2)
        release = threading.Event()
        held = [asyncio.ensure_future(queue.run(release.wait)) for _ in range(3)]  # 1 running, 2 waiting
        await asyncio.sleep(0.05)
        with pytest.raises(Busy):
            await queue.run(lambda: None)
        release.set()
        assert await asyncio.gather(*held) == [True, True, True]
        assert await queue.run(lambda: 7) == 7  # room again once they are done
        queue.close()

    asyncio.run(scenario())


def test_a_full_queue_answers_503_with_retry_after(served, monkeypatch):
    import httpx

    release = threading.Event()
    real = analysis.analyse

    def slow(*args):
        release.wait(10)
        return real(*args)

    monkeypatch.setattr(analysis, "analyse", slow)
    app = create_app(served, workers=1, waiting=1, log=_quiet)

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            body = {"run": "sentiment-rnn", "text": "good"}
            first = [asyncio.ensure_future(http.post("/api/read", json=body)) for _ in range(2)]
            await asyncio.sleep(0.2)
            refused = await http.post("/api/read", json=body)
            listing = await http.get("/api/runs")  # listing the runs needs no worker
            release.set()
            return refused, listing, await asyncio.gather(*first)

    refused, listing, served_ones = asyncio.run(scenario())
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert "busy" in refused.json()["error"]
    assert listing.status_code == 200
    assert [r.status_code for r in served_ones] == [200, 200]


def test_runs_answer_while_a_generation_streams(served):
    import httpx
    import uvicorn

    app = create_app(served, workers=2, log=_quiet)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as http, \
                http.stream("GET", "/api/generate", params={"run": "charlm-ln-lstm", "length": 2000}) as stream:
            lines = stream.iter_lines()
            assert next(lines) == "event: start"
            seen = 0
            for line in lines:
                seen += line == "event: char"
                if seen == 10:
                    break
            with httpx.Client(base_url=base, timeout=5) as other:
                assert other.get("/api/runs").status_code == 200  # while the stream goes on
            assert next(line for line in lines if line.startswith("event:")) == "event: char"  # not over yet
    finally:
        server.should_exit = True
        thread.join(10)


# -- the command ------------------------------------------------------------------------------------------


def test_serve_without_runs_says_how_to_get_some(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["serve"]) == 1
    err = capsys.readouterr().err
    assert "make demo" in err and "gated train" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_serve_binds_loopback_and_warns_for_another_host(models, monkeypatch, capsys):
    import uvicorn

    started = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.append(kw))
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # keep the test process as it was
    assert main(["serve", str(models / "sentiment-rnn"), "--port", "8123"]) == 0
    out = capsys.readouterr().out
    assert started[-1]["host"] == "127.0.0.1" and started[-1]["port"] == 8123
    assert "http://127.0.0.1:8123/" in out and "warning" not in out
    assert main(["serve", str(models / "sentiment-rnn"), "--host", "0.0.0.0"]) == 0
    out = capsys.readouterr().out
    assert started[-1]["host"] == "0.0.0.0" and "warning: listening on 0.0.0.0: anyone who can reach" in out
    assert main(["serve", str(models / "adding-gru-5")]) == 1  # no text run among those given


# -- the page's words ----------------------------------------------------------------------------------


def test_labels_js_serves_the_tours_figure_labels(client):
    from gated.viz.lang import LABELS

    response = client.get("/static/labels.js")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/javascript")
    served = json.loads(re.search(r"window\.GATED_LABELS = (\{.*\});", response.text, re.DOTALL).group(1))
    assert served == LABELS


def test_every_key_the_page_asks_for_has_words_in_both_languages(client):
    from gated.viz.lang import LABELS

    strings = client.get("/static/strings.js").text
    english, german = strings.split("\n  de: {")
    asked = set(re.findall(r'\bt\("([^"]+[^."])"', client.get("/static/app.js").text))  # not "gate." + name:
    asked |= {f"gate.{name}" for name in ("input", "forget", "output", "reset", "update", "candidate", "cell", "hidden")}
    for table, lang in ((english, "en"), (german, "de")):
        known = set(re.findall(r'^\s+"([^"]+)":', table, re.MULTILINE)) | set(LABELS[lang])
        assert asked <= known, (lang, sorted(asked - known))
