"""API detection is not fooled by a server error: a 5xx says nothing about the API."""

from __future__ import annotations

import pytest

import lmstrix
from lmstrix.testing import FakeLMStudio, Fault, SimModel


@pytest.mark.parametrize(
    "fault",
    [Fault(path="/api/v1/models", kind="html_500"), Fault(path="/api/v1/models", status=502)],
    ids=["html_500", "json_502"],
)
def test_a_server_error_on_the_first_request_is_raised_not_taken_as_another_api(
    fault: Fault,
) -> None:
    with FakeLMStudio([SimModel("m/one", 8192)]) as fake:
        fake.inject(fault)
        with lmstrix.Client(fake.base_url, max_retries=0) as client:
            with pytest.raises(lmstrix.APIStatusError) as caught:
                client.list_models()
            assert caught.value.status_code >= 500
            # Nothing was decided: the next try finds the real API.
            assert [m.key for m in client.list_models()] == ["m/one"]
            assert client.server_api == "v1"
            assert client.supports_load


def test_an_lm_studio_03_server_is_still_found() -> None:
    with FakeLMStudio([SimModel("m/one", 8192)], api="v0") as fake:
        with lmstrix.Client(fake.base_url) as client:
            assert client.server_api == "v0"
    with FakeLMStudio([SimModel("m/one", 8192)], api="openai") as fake:
        with lmstrix.Client(fake.base_url) as client:
            assert client.server_api == "openai"
