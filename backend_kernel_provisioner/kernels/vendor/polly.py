"""AWS Polly through boto3: find out whether credentials exist, and synthesize speech.

boto3 is synchronous (and its credential chain may probe the instance
metadata service), so the kernel calls these functions in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class PollyError(Exception):
    """Polly (or boto3) refused the request; the message names the cause."""


@dataclass(frozen=True)
class PollySettings:
    """Where and as whom to call Polly; empty strings mean boto3's usual chain."""

    region: str = ""
    endpoint_url: str = ""
    access_key_id: str = ""
    secret_access_key: str = ""
    session_token: str = ""
    profile: str = ""


def _session(settings: PollySettings) -> Any:
    try:
        import boto3
    except ImportError:
        raise PollyError("Polly needs the Python package 'boto3' (pip install boto3)") from None
    return boto3.Session(
        aws_access_key_id=settings.access_key_id or None,
        aws_secret_access_key=settings.secret_access_key or None,
        aws_session_token=settings.session_token or None,
        region_name=settings.region or None,
        profile_name=settings.profile or None,
    )


def has_credentials(settings: PollySettings) -> bool:
    """True when boto3 can find AWS credentials (explicit, env vars, files, or instance role)."""
    try:
        return _session(settings).get_credentials() is not None
    except Exception:  # no boto3, a bad profile name...: no usable credentials
        return False


def synthesize(settings: PollySettings, text: str, voice_id: str, text_type: str,
               output_format: str = "ogg_vorbis") -> tuple[bytes, str]:
    """The audio bytes and their MIME type (Polly's ``ContentType``)."""
    session = _session(settings)
    try:
        from botocore.exceptions import BotoCoreError, ClientError

        client = session.client(
            "polly", region_name=settings.region or session.region_name or "us-east-1",
            endpoint_url=settings.endpoint_url or None,
        )
        response = client.synthesize_speech(
            Text=text, VoiceId=voice_id, TextType=text_type, OutputFormat=output_format,
        )
        with response["AudioStream"] as stream:
            audio = stream.read()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise PollyError(f"Polly {error.get('Code', 'error')}: {error.get('Message', exc)}") from None
    except BotoCoreError as exc:
        raise PollyError(f"Polly request failed: {exc}") from None
    content_type = response.get("ContentType") or "audio/ogg"
    return audio, content_type.split(";")[0].strip()
