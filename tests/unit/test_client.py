"""The HTTP client: URLs, auth, deadlines and one clear error per failure."""

from __future__ import annotations

import socket

import pytest
import requests
import responses

from sdwebui import errors, jobs
from sdwebui.client import WebUIClient, split_base_url
from sdwebui.deadline import Deadline
from sdwebui.models import Txt2ImgRequest
from tests.conftest import API, BASE, fixture_json, load_fixture


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("http://host:7860", "http://host:7860"),
        ("http://host:7860/", "http://host:7860"),
        ("host:7860", "http://host:7860"),
        ("https://example.com/sd/", "https://example.com/sd"),
        ("http://host:7860/sdapi/v1/", "http://host:7860"),
        ("http://host:7860/docs", "http://host:7860"),
        ("  http://user:pw@host:7860  ", "http://host:7860"),
    ],
)
def test_base_url_is_normalised(raw, expected):
    assert split_base_url(raw)[0] == expected


def test_url_userinfo_becomes_credentials_and_is_never_shown():
    client = WebUIClient("http://alice:s3cret@host:7860")
    assert client.base_url == "http://host:7860"
    assert client.session.auth == ("alice", "s3cret")
    assert "s3cret" not in repr(client)


@pytest.mark.parametrize("raw", ["", "ftp://host", "http://", "http://host:notaport"])
def test_bad_base_urls_are_rejected_with_an_example(raw):
    with pytest.raises(errors.InvalidInput, match="http"):
        split_base_url(raw)


@responses.activate
def test_basic_auth_is_sent_on_the_first_request():
    responses.get(API + "/sd-models", json=fixture_json("auth_get_sd_models_ok"))
    WebUIClient(BASE, username="user", password="secret").sd_models(Deadline(5))
    assert responses.calls[0].request.headers["Authorization"] == "Basic dXNlcjpzZWNyZXQ="


@responses.activate
def test_401_without_credentials_says_to_enter_them():
    rec = load_fixture("auth_get_sd_models_no_credentials")["response"]
    responses.get(API + "/sd-models", json=rec["json"], status=rec["status"])
    with pytest.raises(errors.AuthenticationFailed, match="requires a username and password.*--api-auth"):
        WebUIClient(BASE).sd_models(Deadline(5))


@responses.activate
def test_401_with_wrong_password_quotes_the_server_but_not_the_password():
    rec = load_fixture("auth_get_sd_models_wrong_password")["response"]
    responses.get(API + "/sd-models", json=rec["json"], status=rec["status"])
    with pytest.raises(errors.AuthenticationFailed) as caught:
        WebUIClient(BASE, username="user", password="wrong-pass").sd_models(Deadline(5))
    assert "Incorrect username or password" in str(caught.value)
    assert "wrong-pass" not in str(caught.value)


@responses.activate
def test_404_on_a_core_route_means_api_off_or_not_a_webui():
    rec = load_fixture("bad_unknown_endpoint")["response"]
    responses.get(API + "/sd-models", json=rec["json"], status=404)
    with pytest.raises(errors.ApiNotFound, match="--api"):
        WebUIClient(BASE).sd_models(Deadline(5))


@responses.activate
def test_html_instead_of_json_is_named_as_such():
    responses.get(API + "/sd-models", body="<html><body>Please log in</body></html>", content_type="text/html")
    with pytest.raises(errors.ApiNotFound, match="HTML page"):
        WebUIClient(BASE).sd_models(Deadline(5))


@responses.activate
def test_html_502_from_a_proxy():
    responses.post(API + "/txt2img", body="<html><h1>502 Bad Gateway</h1></html>", status=502, content_type="text/html")
    with pytest.raises(errors.ServerError, match="HTTP 502 and an HTML page"):
        jobs.txt2img(WebUIClient(BASE), Txt2ImgRequest(prompt="x", width=64, height=64, steps=2, cfg_scale=7), Deadline(5))


@responses.activate
def test_422_field_errors_are_listed_by_field():
    rec = load_fixture("bad_txt2img_width_string")["response"]
    responses.post(API + "/txt2img", json=rec["json"], status=422)
    with pytest.raises(errors.RequestRejected, match="width: Input should be a valid integer") as caught:
        WebUIClient(BASE).post("txt2img", {}, deadline=Deadline(5))
    assert caught.value.status == 422


@responses.activate
def test_500_message_of_forge_is_carried():
    rec = load_fixture("bad_options_unknown_checkpoint")["response"]
    responses.post(API + "/options", json=rec["json"], status=500)
    with pytest.raises(errors.ServerError, match="model 'does-not-exist.safetensors' not found") as caught:
        WebUIClient(BASE).set_options({"sd_model_checkpoint": "does-not-exist.safetensors"}, Deadline(5))
    assert caught.value.errors == "model 'does-not-exist.safetensors' not found"


@responses.activate
def test_500_errors_of_a1111_and_out_of_memory_advice():
    body = {"error": "OutOfMemoryError", "detail": "", "body": "", "errors": "CUDA out of memory. Tried to allocate 2.00 GiB"}
    responses.post(API + "/txt2img", json=body, status=500)
    with pytest.raises(errors.ServerError, match="ran out of GPU memory.*lower width"):
        WebUIClient(BASE).post("txt2img", {}, deadline=Deadline(5))


@responses.activate
def test_404_with_a_reason_is_not_found_not_api_off():
    rec = load_fixture("bad_img2img_no_init_images")["response"]
    responses.post(API + "/img2img", json=rec["json"], status=404)
    with pytest.raises(errors.NotFound, match="Init image not found"):
        WebUIClient(BASE).post("img2img", {}, deadline=Deadline(5))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_on_localhost_explains_docker():
    with pytest.raises(errors.Unreachable) as caught:
        WebUIClient(f"http://127.0.0.1:{_closed_port()}").sd_models(Deadline(5))
    message = str(caught.value)
    assert "Connection refused" in message
    assert "host.docker.internal" in message and "--listen" in message


def test_connection_refused_on_a_lan_host_has_no_docker_hint():
    client = WebUIClient("http://192.0.2.10:7860")
    error = client._connection_error(requests.exceptions.ConnectionError(ConnectionRefusedError(111, "refused")))
    assert "Connection refused" in str(error) and "docker" not in str(error)


@responses.activate
def test_dns_failure_is_named():
    responses.get("http://no-such-host:7860/sdapi/v1/sd-models", body=requests.exceptions.ConnectionError(socket.gaierror(-2, "Name or service not known")))
    with pytest.raises(errors.Unreachable, match="could not be resolved"):
        WebUIClient("http://no-such-host:7860").sd_models(Deadline(5))


@responses.activate
def test_connect_timeout_is_named():
    responses.get(API + "/sd-models", body=requests.exceptions.ConnectTimeout())
    with pytest.raises(errors.Unreachable, match="Timed out .* connecting"):
        WebUIClient(BASE).sd_models(Deadline(5))


@responses.activate
def test_truncated_json_is_malformed():
    responses.get(API + "/sd-models", body='[{"title": "rand-a.safe', content_type="application/json")
    with pytest.raises(errors.MalformedResponse, match="not valid JSON"):
        WebUIClient(BASE).sd_models(Deadline(5))


@responses.activate
def test_answers_are_bounded_in_size():
    responses.get(API + "/loras", body=b"[" + b" " * 5000 + b"]", content_type="application/json")
    with pytest.raises(errors.MalformedResponse, match="larger than"):
        WebUIClient(BASE).get("loras", deadline=Deadline(5), max_bytes=1024)


@responses.activate
def test_unexpected_shape_is_malformed():
    responses.get(API + "/sd-models", json={"not": "a list"})
    with pytest.raises(errors.MalformedResponse, match="not a list"):
        WebUIClient(BASE).sd_models(Deadline(5))


@responses.activate
def test_json_bodies_carry_a_content_type():
    responses.post(API + "/options", body="null", content_type="application/json")
    WebUIClient(BASE).set_options({"sd_model_checkpoint": "rand-a"}, Deadline(5))
    assert responses.calls[0].request.headers["Content-Type"] == "application/json"
