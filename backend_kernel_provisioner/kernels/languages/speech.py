"""``backend-speech``: the runner's AWS Polly runtime, plus an offline engine.

A cell is either JSON ``{"text": ..., "voiceId": ..., "textType": "text"|"ssml"}``
(optionally ``"languageCode"``) or plain text (SSML when it starts with ``<speak``).
The answer is a ``display_data`` with the audio (base64 ``audio/ogg`` or
``audio/wav``) and an HTML ``<audio>`` element with a data: URL, so
JupyterLab plays it and static exports keep it.

With AWS credentials (kernel options, or boto3's chain: env vars, config
files, instance role) the speech comes from Polly as ``ogg_vorbis``; without
them from ``espeak-ng`` (WAV; OGG through ``sox`` when asked), so the kernel
works on any machine.
"""

from __future__ import annotations

import asyncio
import base64
import html
import json
import os
from dataclasses import dataclass
from typing import Any

from traitlets import Enum, Unicode, default

from backend_kernel_provisioner.common.languages import LANGUAGES
from backend_kernel_provisioner.kernels.base import BackendKernel, CellResult
from backend_kernel_provisioner.kernels.process import ProgramNotFound
from backend_kernel_provisioner.kernels.vendor.polly import PollyError, PollySettings, has_credentials, synthesize

FIELDS = ("text", "voiceId", "textType", "languageCode")


class SpeechRequestError(ValueError):
    """The cell is not a valid speech request; the message names the problem."""


@dataclass(frozen=True)
class SpeechRequest:
    text: str
    voice_id: str
    text_type: str
    language_code: str = ""


def parse_request(code: str, default_voice: str) -> SpeechRequest:
    """A cell as a speech request: a JSON object, or the text itself."""
    stripped = code.strip()
    if not stripped.startswith("{"):
        text_type = "ssml" if stripped.startswith("<speak") else "text"
        return SpeechRequest(stripped, default_voice, text_type)
    try:
        fields = json.loads(stripped)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise SpeechRequestError(f"the cell is not valid JSON: {exc.msg} ({where})") from None
    if not isinstance(fields, dict):
        raise SpeechRequestError("the cell's JSON must be an object like {\"text\": \"Hello\"}")
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise SpeechRequestError(f"unknown field(s) {', '.join(map(repr, unknown))}; known: {', '.join(FIELDS)}")
    for name in FIELDS:
        if name in fields and not isinstance(fields[name], str):
            raise SpeechRequestError(f"field {name!r} must be a string, got {type(fields[name]).__name__}")
    text = fields.get("text", "")
    if not text.strip():
        raise SpeechRequestError("field 'text' is missing or empty")
    text_type = fields.get("textType", "text")
    if text_type not in ("text", "ssml"):
        raise SpeechRequestError(f"field 'textType' must be 'text' or 'ssml', got {text_type!r}")
    return SpeechRequest(text, fields.get("voiceId") or default_voice, text_type, fields.get("languageCode", ""))


def audio_bundle(audio: bytes, mime: str, label: str) -> dict[str, str]:
    """The display data: the audio itself, a playable <audio> element, and a text summary."""
    encoded = base64.b64encode(audio).decode("ascii")
    player = (f'<audio controls src="data:{mime};base64,{encoded}" title="{html.escape(label)}">'
              f"your browser cannot play {html.escape(mime)}</audio>")
    return {mime: encoded, "text/html": player, "text/plain": f"<speech {label}: {len(audio)} bytes of {mime}>"}


class SpeechKernel(BackendKernel):
    """Cells are things to say; replies are audio."""

    spec = LANGUAGES["speech"]

    mimetype = "application/json"
    file_extension = ".json"
    pygments_lexer = "json"
    codemirror_mode = "application/json"
    line_comment = "#"
    block_comment = None
    quotes = '"'
    keywords = FIELDS

    engine = Enum(
        ["auto", "polly", "espeak"], "auto", config=True,
        help="Speech engine: 'polly' (AWS), 'espeak' (offline espeak-ng), or 'auto' = Polly when AWS "
             "credentials are found, else espeak-ng.",
    )
    default_voice = Unicode("Joanna", config=True, help="Polly voice used when a cell names none.")
    polly_endpoint_url = Unicode(
        config=True,
        help="Polly endpoint URL (a local stand-in or a VPC endpoint; env: BACKEND_POLLY_ENDPOINT_URL; "
             "default: AWS's own).",
    )
    aws_region = Unicode(config=True, help="AWS region for Polly (default: boto3's, else us-east-1).")
    aws_access_key_id = Unicode(config=True, help="AWS access key (default: boto3's credential chain).")
    aws_secret_access_key = Unicode(config=True, help="AWS secret key (default: boto3's credential chain).")
    aws_session_token = Unicode(config=True, help="AWS session token for temporary credentials.")
    aws_profile = Unicode(config=True, help="Profile in the AWS config files (default: boto3's).")
    espeak_program = Unicode("espeak-ng", config=True, help="The offline speech engine's program.")
    espeak_voice = Unicode(
        "en", config=True,
        help="espeak-ng voice when a cell gives no languageCode (see `espeak-ng --voices`).",
    )
    offline_format = Enum(
        ["wav", "ogg"], "wav", config=True,
        help="Audio format of the offline engine: 'wav' as espeak-ng writes it, or 'ogg' converted with sox.",
    )
    sox_program = Unicode("sox", config=True, help="Converter used when offline_format is 'ogg'.")

    @default("polly_endpoint_url")
    def _default_endpoint(self) -> str:
        return os.environ.get("BACKEND_POLLY_ENDPOINT_URL", "")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._use_polly: bool | None = None
        self._cell_number = 0

    def detect_version(self) -> str:
        return {"polly": "AWS Polly", "espeak": "espeak-ng"}.get(self.engine, "AWS Polly or espeak-ng")

    @property
    def polly_settings(self) -> PollySettings:
        return PollySettings(self.aws_region, self.polly_endpoint_url, self.aws_access_key_id,
                             self.aws_secret_access_key, self.aws_session_token, self.aws_profile)

    async def use_polly(self) -> bool:
        """Which engine answers: decided once (the credential probe may take a moment)."""
        if self.engine != "auto":
            return self.engine == "polly"
        if self._use_polly is None:
            self._use_polly = await asyncio.to_thread(has_credentials, self.polly_settings)
            self.log.info("speech engine: %s", "AWS Polly" if self._use_polly else "espeak-ng (no AWS credentials)")
        return self._use_polly

    async def execute_code(self, code: str) -> CellResult:
        try:
            request = parse_request(code, self.default_voice)
        except SpeechRequestError as exc:
            return CellResult(1, "SpeechRequestError", str(exc))
        if await self.use_polly():
            try:
                audio, mime = await asyncio.to_thread(
                    synthesize, self.polly_settings, request.text, request.voice_id, request.text_type
                )
            except PollyError as exc:
                return CellResult(1, "PollyError", str(exc))
            label = f"Polly voice {request.voice_id}"
        else:
            try:
                audio, mime, failure = await self.speak_offline(request)
            except ProgramNotFound as exc:
                return CellResult.missing(exc.program, "the offline speech engine; or set AWS credentials for Polly")
            if failure is not None:
                return failure
            label = f"espeak-ng voice {self.offline_voice(request)}"
        if not self._silent:
            self.send_response(self.iopub_socket, "display_data",
                               {"data": audio_bundle(audio, mime, label), "metadata": {}, "transient": {}})
        return CellResult()

    def offline_voice(self, request: SpeechRequest) -> str:
        return request.language_code.lower() or self.espeak_voice

    async def speak_offline(self, request: SpeechRequest) -> tuple[bytes, str, CellResult | None]:
        """espeak-ng writes a WAV (sox converts it when OGG is wanted); raises ProgramNotFound."""
        self._cell_number += 1
        base = os.path.join(self.work_dir, f"speech-{self._cell_number}")
        with open(f"{base}.txt", "w", encoding="utf-8") as fh:
            fh.write(request.text)
        argv = [self.espeak_program, "-v", self.offline_voice(request), "-w", f"{base}.wav", "-f", f"{base}.txt"]
        if request.text_type == "ssml":
            argv.insert(1, "-m")
        result = await self.run_program(argv, cwd=self.work_dir, stdin=False)
        if result.returncode:
            return b"", "", CellResult.from_program(result, self.espeak_program)
        path, mime = f"{base}.wav", "audio/wav"
        if self.offline_format == "ogg":
            result = await self.run_program([self.sox_program, path, f"{base}.ogg"], cwd=self.work_dir, stdin=False)
            if result.returncode:
                return b"", "", CellResult.from_program(result, self.sox_program)
            path, mime = f"{base}.ogg", "audio/ogg"
        try:
            with open(path, "rb") as fh:
                audio = fh.read()
        except OSError as exc:
            return b"", "", CellResult(1, "SpeechError", f"{self.espeak_program} wrote no audio: {exc}")
        if not audio:
            return b"", "", CellResult(1, "SpeechError", f"{self.espeak_program} wrote an empty file {path}")
        for leftover in (f"{base}.txt", f"{base}.wav", f"{base}.ogg"):
            if os.path.exists(leftover):
                os.unlink(leftover)
        return audio, mime, None


kernel_class = SpeechKernel
