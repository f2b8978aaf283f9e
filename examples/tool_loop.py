"""A tool loop: the model calls Python functions until it can answer.

python examples/tool_loop.py                                   # the simulator
python examples/tool_loop.py --server http://localhost:1234 [--model KEY]

On the simulator the model is scripted: its first call has arguments that are not JSON
(the loop reports the error back and the model corrects itself), then it calls the same
tool twice in one turn (the calls run in parallel), then it answers. A real model
decides for itself; pick one trained for tool use (``lmstrix list`` shows ``tool_use``).
"""

from __future__ import annotations

import sys
from typing import Any, Dict, List, Optional

import _common

import lmstrix
from lmstrix.testing import SimModel, ToolScript

QUESTION = "What is the weather in Paris and in Rome? Answer in one sentence."

# The simulated model's turns: a call with broken arguments, two calls at once, an answer.
SCRIPT = ToolScript(
    [
        [("get_weather", '{"city": "Par')],
        [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})],
    ]
)
FLEET = [SimModel("example/tool-user-3b", 32768, trained_for_tool_use=True, tool_script=SCRIPT)]

FORECASTS = {"paris": ("sunny", 21), "rome": ("cloudy", 17)}


def get_weather(city: str) -> Dict[str, Any]:
    """The current weather in a city.

    Args:
        city: the city's name, e.g. "Paris"
    """
    sky, celsius = FORECASTS.get(city.strip().lower(), ("unknown", None))
    return {"city": city, "sky": sky, "celsius": celsius}


def show(run: lmstrix.client.ToolRun) -> None:
    """Print each call the model made with the result it was sent back."""
    results = {m["tool_call_id"]: m["content"] for m in run.messages if m["role"] == "tool"}
    for message in run.messages:
        for call in message.get("tool_calls") or ():
            name, arguments = call["function"]["name"], call["function"]["arguments"]
            print(f"call {name} {arguments} -> {results.get(call['id'], '(not run)')}")


def main(argv: Optional[List[str]] = None) -> int:
    """Run the loop once; print the calls, the answer and the number of steps."""
    args = _common.parser("Let a model call Python functions until it answers.").parse_args(argv)
    try:
        with _common.connect(args, FLEET) as client:
            model = _common.pick_model(client, args.model)
            print(f"model: {model}")
            print(f"question: {QUESTION}")
            try:
                run = client.run_tools(
                    model, QUESTION, {"get_weather": get_weather}, max_steps=5, temperature=0
                )
            except lmstrix.ToolLoopError as exc:
                show(exc.run)
                print(f"no answer: {exc}")
                return 1
            show(run)
            print(f"answer: {run.text.strip()}")
            print(f"steps: {run.steps}, tool calls run: {len(run.calls)}")
    except lmstrix.LMStrixError as exc:
        return _common.fail(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
