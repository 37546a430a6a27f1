"""backend-speech: Polly through boto3 against a local moto server, and espeak-ng offline, for real."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import subprocess
import sys
import time
import wave
from collections.abc import Iterator

import pytest

from backend_kernel_provisioner.kernels.languages.speech import SpeechRequestError, parse_request

from .helpers import require_programs, run_cell, running_kernel


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def without_aws(env: dict[str, str]) -> dict[str, str]:
    """An environment where boto3 finds no credentials (and does not probe instance metadata)."""
    clean = {k: v for k, v in env.items() if not k.startswith("AWS_") and k != "BACKEND_POLLY_ENDPOINT_URL"}
    clean.update(AWS_SHARED_CREDENTIALS_FILE="/nonexistent/credentials", AWS_CONFIG_FILE="/nonexistent/config",
                 AWS_EC2_METADATA_DISABLED="true")
    return clean


@pytest.fixture(scope="module")
def polly_endpoint() -> Iterator[str]:
    """moto's server mode on loopback: a local stand-in for the Polly API."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def only_display(out: dict) -> dict:
    assert out["reply"]["status"] == "ok", out
    assert out["reply"]["exit_code"] == 0
    assert len(out["displays"]) == 1, out["displays"]
    return out["displays"][0]["data"]


def test_parse_request_forms_and_errors() -> None:
    assert parse_request("Hello there", "Joanna").text_type == "text"
    assert parse_request("<speak>Hi</speak>", "Joanna").text_type == "ssml"
    request = parse_request('{"text": "Hi", "voiceId": "Brian", "textType": "ssml"}', "Joanna")
    assert (request.text, request.voice_id, request.text_type) == ("Hi", "Brian", "ssml")
    with pytest.raises(SpeechRequestError, match="line 1, column"):
        parse_request('{"text": "Hi",}', "Joanna")
    with pytest.raises(SpeechRequestError, match="'voice'"):
        parse_request('{"text": "Hi", "voice": "x"}', "Joanna")
    with pytest.raises(SpeechRequestError, match="'text' is missing"):
        parse_request('{"voiceId": "Joanna"}', "Joanna")
    with pytest.raises(SpeechRequestError, match="textType"):
        parse_request('{"text": "Hi", "textType": "html"}', "Joanna")


@pytest.mark.kernel
async def test_polly_path_against_local_endpoint(polly_endpoint: str) -> None:
    env = without_aws(dict(os.environ))
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               BACKEND_POLLY_ENDPOINT_URL=polly_endpoint)
    async with running_kernel("backend-speech", env=env) as (_km, kc):
        data = only_display(await run_cell(kc, json.dumps({"text": "Hello", "voiceId": "Joanna", "textType": "text"})))
        assert set(data) == {"audio/ogg", "text/html", "text/plain"}
        audio = base64.b64decode(data["audio/ogg"])
        assert audio  # whatever the endpoint returned, passed through intact
        assert f'src="data:audio/ogg;base64,{data["audio/ogg"]}"' in data["text/html"]
        assert "Polly voice Joanna" in data["text/plain"]

        bad = await run_cell(kc, json.dumps({"text": "Hello", "voiceId": "NoSuchVoice"}))
        assert bad["reply"]["status"] == "error" and bad["reply"]["exit_code"] == 1
        assert bad["reply"]["ename"] == "PollyError" and "InvalidParameterValue" in bad["reply"]["evalue"]
        assert bad["displays"] == []


@pytest.mark.kernel
async def test_polly_credentials_from_kernel_options(polly_endpoint: str) -> None:
    options = {"engine": "polly", "aws_access_key_id": "testing", "aws_secret_access_key": "testing",
               "aws_region": "eu-west-1", "polly_endpoint_url": polly_endpoint}
    async with running_kernel("backend-speech", env=without_aws(dict(os.environ)), kernel_options=options) as (_km, kc):
        data = only_display(await run_cell(kc, "Plain text is spoken too."))
        assert base64.b64decode(data["audio/ogg"])


@pytest.mark.kernel
async def test_offline_engine_writes_real_wav() -> None:
    require_programs("espeak-ng")
    async with running_kernel("backend-speech", env=without_aws(dict(os.environ))) as (_km, kc):
        data = only_display(await run_cell(kc, '{"text": "Hello from the offline engine", "languageCode": "en-US"}'))
        with wave.open(io.BytesIO(base64.b64decode(data["audio/wav"]))) as wav:
            assert wav.getnchannels() == 1
            assert wav.getframerate() > 8000
            assert wav.getnframes() > wav.getframerate() // 4  # more than a quarter second of speech
        assert 'src="data:audio/wav;base64,' in data["text/html"]
        assert "espeak-ng voice en-us" in data["text/plain"]

        ssml = only_display(await run_cell(kc, "<speak>Hi <break time='500ms'/> there</speak>"))
        assert base64.b64decode(ssml["audio/wav"]).startswith(b"RIFF")

        bad_json = await run_cell(kc, '{"text": "unterminated')
        assert bad_json["reply"]["status"] == "error"
        assert bad_json["reply"]["ename"] == "SpeechRequestError" and "not valid JSON" in bad_json["reply"]["evalue"]
        assert bad_json["errors"] and bad_json["displays"] == []

        bad_voice = await run_cell(kc, '{"text": "Hi", "languageCode": "xx-nowhere"}')
        assert bad_voice["reply"]["status"] == "error"
        assert "espeak-ng exited with code" in bad_voice["reply"]["evalue"]
        assert "voice does not exist" in bad_voice["stderr"]


@pytest.mark.kernel
async def test_missing_offline_engine_is_named() -> None:
    options = {"engine": "espeak", "espeak_program": "espeak-ng-not-installed"}
    async with running_kernel("backend-speech", kernel_options=options) as (_km, kc):
        out = await run_cell(kc, "Hello")
        assert out["reply"]["status"] == "error" and out["reply"]["exit_code"] == 127
        assert "espeak-ng-not-installed" in out["reply"]["evalue"]
        assert "AWS credentials" in out["reply"]["evalue"]


@pytest.mark.kernel
async def test_offline_engine_converts_to_ogg_with_sox() -> None:
    require_programs("espeak-ng", "sox")
    async with running_kernel("backend-speech", env=without_aws(dict(os.environ)),
                              kernel_options={"offline_format": "ogg"}) as (_km, kc):
        data = only_display(await run_cell(kc, "Converted speech"))
        assert base64.b64decode(data["audio/ogg"]).startswith(b"OggS")
