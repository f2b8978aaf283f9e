"""Write docs/notebooks/*.ipynb from the cells below (no outputs: CI executes them).

Each code cell may carry ``expect``: texts its output must contain, checked by
tests/test_notebooks.py. Run ``python scripts/make_notebooks.py`` after editing (it runs
``ruff format`` over the notebooks at the end).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import List, Tuple, Union

import nbformat

OUT = Path(__file__).resolve().parent.parent / "docs" / "notebooks"
Cell = Union[str, Tuple[str, List[str]]]  # markdown text, or (code, expected texts)

START = (
    "from lmstrix.testing import FakeLMStudio\n\n"
    "# The simulator: a real HTTP server on 127.0.0.1 speaking LM Studio's API. Against your\n"
    '# own LM Studio, skip this cell and use SERVER = "http://localhost:1234".\n'
    "fake = FakeLMStudio().start()\n"
    "SERVER = fake.base_url\n"
    "print('serving on', SERVER)"
)
STOP = ("fake.stop()", [])

NOTEBOOKS = {
    "01-getting-started": [
        "# Getting started with lmstrix\n\n"
        "lmstrix is a Python toolkit for LM Studio, the local LLM server. It finds out how much "
        "context a model really works at on your machine, keeps that in a registry, and uses "
        "it. This notebook runs against the built-in simulator, so it needs no model.",
        (START, ["serving on http://127.0.0.1:"]),
        "## Models and a first answer",
        (
            "import lmstrix\n\n"
            "client = lmstrix.Client(SERVER)\n"
            "for info in client.list_models():\n"
            "    print(f'{info.key:40} {info.type:10} declares {info.max_context_length:>7,} tokens')",
            ["lmstrix-demo/qwen-like-4b", "declares"],
        ),
        (
            "MODEL = 'lmstrix-demo/qwen-like-4b'\n"
            "answer = client.chat(MODEL, 'What is 2+3?', temperature=0)\n"
            "print(answer.text)\n"
            "print(answer.usage)",
            ["5", "prompt_tokens="],
        ),
        "Streaming: chunks arrive as the server sends them.",
        (
            "with client.stream_chat(MODEL, 'Tell me a story', max_tokens=20) as stream:\n"
            "    for chunk in stream:\n"
            "        print(chunk.text, end='')\n"
            "print()\nprint('finish reason:', stream.completion.finish_reason)",
            ["Simulated answer", "finish reason:"],
        ),
        "## The real limits\n\n"
        "The model declares 131,072 tokens. `find_context_limit` loads it at growing sizes "
        "(the largest that loads) and hides needles in growing prompts (the largest it still "
        "answers correctly), and keeps the findings in a registry.",
        (
            "import os\nimport tempfile\n\n"
            "registry = lmstrix.Registry(os.path.join(tempfile.mkdtemp(), 'registry.json'))\n"
            "report = lmstrix.find_context_limit(client, MODEL, registry=registry, seed=1)\n"
            "print('declared:', report.declared_context)\n"
            "print('loadable:', report.loadable_context)\n"
            "print('working: ', report.working_context)\n"
            "print(report.loads, 'loads,', report.requests, 'requests')",
            ["declared: 131072", "loadable: 49920", "working: "],
        ),
        "The registry remembers them, per server: the next run, `lmstrix list`, and the "
        "fit checks of pools and long documents read them from there.",
        (
            "record = registry.get(MODEL, server=SERVER)\n"
            "print(record.status, record.working_context, f'{record.chars_per_token:.2f} chars/token')",
            ["done"],
        ),
        ("client.close()\n" + STOP[0], []),
    ],
    "02-understanding-context-limits": [
        "# Understanding context limits\n\n"
        "Two limits matter: the **loadable** context (the largest that loads at all on this "
        "machine) and the **working** context (the largest prompt the model still answers "
        "correctly). This notebook watches a search step by step, then draws its probes and "
        "the speed profile it measured on the way.",
        (START, ["serving on"]),
        (
            "import os\nimport tempfile\n\nimport lmstrix\n\n"
            "MODEL = 'lmstrix-demo/qwen-like-4b'\n"
            "client = lmstrix.Client(SERVER)\n"
            "registry = lmstrix.Registry(os.path.join(tempfile.mkdtemp(), 'registry.json'))\n"
            "steps = []\n"
            "report = lmstrix.find_context_limit(\n"
            "    client, MODEL, registry=registry, seed=1, on_progress=steps.append\n"
            ")\n"
            "for step in steps[:6] + steps[-3:]:\n"
            "    print(step.message)",
            ["load at 131,072 tokens", "auto_fit"],
        ),
        "The first load asked for the declared 131,072 tokens; the server fitted it to what "
        "memory allows (LM Studio's auto-fit) and said so. Then needles: a number hidden in "
        "filler text, asked back. Passing sizes grow until an answer goes wrong; the search "
        "then narrows the boundary and confirms it with several needles.",
        (
            "print(f'loadable {report.loadable_context:,}, working {report.working_context:,}')\n"
            "failed = [p for p in report.probes if p.ok is False]\n"
            "print(len(report.probes), 'probes,', len(failed), 'failed')\n"
            "for probe in failed[:3]:\n"
            "    print(' ', probe.kind, probe.size, probe.failure)",
            ["loadable 49,920, working ", "probes,"],
        ),
        "## The picture\n\n"
        "`plot_limits` (extra `[plot]`) draws the probes by size, the three limits, and the "
        "speed profile: prefill and decode tokens per second by prompt size, measured from "
        "the probes the search sent anyway. `lmstrix show MODEL --plot FILE.png` draws the "
        "same from the command line.",
        (
            "from lmstrix.integrations.plot import plot_limits\n\n"
            "figure = plot_limits(registry.get(MODEL, server=SERVER))\n"
            "figure",
            ["Figure"],
        ),
        (
            "for point in report.speed[:5]:\n"
            "    print(point.prompt_tokens, 'tokens:', point.prefill_tps, 'prefill tokens/s')",
            ["tokens:"],
        ),
        ("client.close()\n" + STOP[0], []),
    ],
    "03-building-workflows": [
        "# Building workflows: templates, a pool, fallback chains, batches\n\n"
        "Two simulated servers stand for two machines.",
        (
            "from lmstrix.testing import FakeLMStudio\n\n"
            "one, two = FakeLMStudio().start(), FakeLMStudio().start()\n"
            "SERVERS = [one.base_url, two.base_url]\n"
            "print(len(SERVERS), 'servers')",
            ["2 servers"],
        ),
        "## Prompt templates\n\n"
        "`{{name}}` placeholders, libraries that refer to their own entries, variables "
        "inserted literally (user text cannot inject placeholders).",
        (
            "import lmstrix\n\n"
            "library = lmstrix.PromptLibrary.from_dict({\n"
            "    'persona': 'a patient teacher',\n"
            "    'explain': 'You are {{persona}}. Explain {{topic}} in {{words}} words.',\n"
            "})\n"
            "print(library.render('explain', {'topic': 'tides', 'words': 20}))",
            ["You are a patient teacher. Explain tides in 20 words."],
        ),
        "## A pool over both servers\n\n"
        "A call goes where the model is loaded, with free slots; a failing server cools "
        "down. A list of model keys is a fallback chain.",
        (
            "pool = lmstrix.Pool(SERVERS)\n"
            "two.preload('lmstrix-demo/solid-3b')\n"
            "print(pool.chat('lmstrix-demo/solid-3b', 'What is 2+2?', temperature=0).text)\n"
            "print('requests on the server where it is loaded:',\n"
            "      two.counters.requests.get('/v1/chat/completions', 0))",
            ["4", "requests on the server where it is loaded: 1"],
        ),
        (
            "answer = pool.chat(['no-such/model', 'lmstrix-demo/solid-3b'], 'What is 3+3?')\n"
            "print(answer.model, '->', answer.text)",
            ["lmstrix-demo/solid-3b -> 6"],
        ),
        "## A batch\n\n"
        "Many prompts, a pool of threads, one crash-safe JSON Lines output: a run stopped "
        "at any moment resumes where it stopped.",
        (
            "import os\nimport tempfile\n\n"
            "from lmstrix.batch import run_batch\n\n"
            "items = [{'id': f'q{i}', 'topic': topic, 'words': 10}\n"
            "         for i, topic in enumerate(['rivers', 'tides', 'clouds', 'sand'])]\n"
            "output = os.path.join(tempfile.mkdtemp(), 'out.jsonl')\n"
            "summary = run_batch(items, pool, 'lmstrix-demo/solid-3b', output=output,\n"
            "                    template='explain', library=library)\n"
            "print(summary.done, 'done,', summary.failed, 'failed')\n"
            "again = run_batch(items, pool, 'lmstrix-demo/solid-3b', output=output,\n"
            "                  template='explain', library=library)\n"
            "print('second run:', again.done, 'done,', again.skipped, 'skipped')",
            ["4 done, 0 failed", "second run: 0 done, 4 skipped"],
        ),
        ("pool.close()\none.stop()\ntwo.stop()", []),
    ],
    "04-performance-tuning": [
        "# Performance tuning: metrics, the response cache, prefix ordering\n\n"
        "Where does the time go, what is paid for twice, and how to let the server reuse "
        "its prompt cache.",
        (START, ["serving on"]),
        "## Metrics\n\n"
        "An observer of every call: counts, errors, latency, time to first token, prefill "
        "and decode speed, tokens, per server and model.",
        (
            "import lmstrix\nfrom lmstrix.observe import Metrics\n\n"
            "MODEL = 'lmstrix-demo/solid-3b'\n"
            "metrics = Metrics()\n"
            "client = lmstrix.Client(SERVER, observers=[metrics])\n"
            "for n in range(5):\n"
            "    client.chat(MODEL, f'What is {n}+1?', temperature=0)\n"
            "client.stream_chat(MODEL, 'Tell me a story').text()\n"
            "(series,) = [s for s in metrics.snapshot()['series'] if s['operation'] == 'chat']\n"
            "print(series['calls'], 'calls;', series['input_tokens'], 'tokens in;',\n      f\"latency p95 {series['latency_s']['p95']:.4f} s\")",
            ["6 calls;"],
        ),
        (
            "print('\\n'.join(metrics.prometheus().splitlines()[:6]))",
            ["lmstrix_calls_total"],
        ),
        "## The response cache\n\n"
        "Deterministic requests (temperature 0 or a fixed seed) are answered from a SQLite "
        "file the second time; a temperature-0.7 request never is.",
        (
            "import os\nimport tempfile\n\nfrom lmstrix.cache import ResponseCache\n\n"
            "cache = ResponseCache(os.path.join(tempfile.mkdtemp(), 'cache.sqlite'))\n"
            "cached = lmstrix.Client(SERVER, middleware=[cache])\n"
            "fake.reset_counters()\n"
            "for _ in range(3):\n"
            "    cached.chat(MODEL, 'What is 2+3?', temperature=0)\n"
            "cached.close()\n"
            "print(cache.stats)\n"
            "print('requests the server saw:', fake.counters.requests.get('/v1/chat/completions', 0))",
            ["hits=2, misses=1", "requests the server saw: 1"],
        ),
        "## Prefix ordering\n\n"
        "Questions about several long documents, through one template. In input order the "
        "documents take turns, and the server processes each whole prompt again; in prefix "
        "order items sharing a document run back to back and the server reuses its cached "
        "prefix. The simulator counts the prompt tokens it had to process.",
        (
            "from lmstrix.batch import run_batch\n\n"
            "docs = {name: ' '.join(f'{name} fact {i}.' for i in range(600))\n"
            "        for name in ('alpha', 'beta', 'gamma')}\n"
            "items = [{'id': f'{name}-{q}', 'doc': text, 'q': q}\n"
            "         for q in range(4) for name, text in docs.items()]\n"
            "template = 'Document:\\n{{doc}}\\n\\nQuestion {{q}}: what is in it?'\n"
            "processed = {}\n"
            "for order in ('input', 'prefix'):\n"
            "    fake.reset_counters()\n"
            "    out = os.path.join(tempfile.mkdtemp(), f'{order}.jsonl')\n"
            "    run_batch(items, client, MODEL, output=out, template=template, order=order, workers=1)\n"
            "    processed[order] = fake.counters.processed_tokens\n"
            "print(processed)\n"
            "print(f\"prefix order processes {processed['prefix'] / processed['input']:.2f}x the tokens\")",
            ["prefix order processes 0."],
        ),
        ("client.close()\n" + STOP[0], []),
    ],
}


def build(cells: List[Cell]) -> nbformat.NotebookNode:
    book = nbformat.v4.new_notebook()
    book.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for cell in cells:
        if isinstance(cell, str):
            book.cells.append(nbformat.v4.new_markdown_cell(cell))
        else:
            code, expect = cell
            node = nbformat.v4.new_code_cell(code)
            if expect:
                node.metadata["lmstrix"] = {"expect": expect}
            book.cells.append(node)
    for number, node in enumerate(book.cells):
        node["id"] = f"cell-{number}"
    return book


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, cells in NOTEBOOKS.items():
        nbformat.write(build(cells), str(OUT / f"{name}.ipynb"))
        print("wrote", OUT / f"{name}.ipynb")
    # The project's formatter has the last word on the cells' code (ruff formats notebooks).
    subprocess.run([sys.executable, "-m", "ruff", "format", "-q", str(OUT)], check=True)


if __name__ == "__main__":
    main()
