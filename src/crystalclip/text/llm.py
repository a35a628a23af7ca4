"""A small client for OpenAI-compatible chat-completions endpoints (what is asked is the caller's).

Works with any server that speaks ``POST {base_url}/chat/completions``: vLLM
(``http://localhost:8000/v1``), llama.cpp's server (``http://localhost:8080/v1``), Ollama
(``http://localhost:11434/v1``). As with the OpenAI SDK, ``base_url`` is the URL that ends in ``/v1``.

    client = ChatClient("http://localhost:8000/v1", "meta-llama/Llama-3.1-70B-Instruct")
    client.complete_json([{"role": "user", "content": "..."}])   # -> dict
"""
from __future__ import annotations

import json
import os
import re
import time

import httpx

from ..errors import BadInput

__all__ = ["ChatClient", "LLMError", "parse_json_object", "excerpt"]

_RETRY_STATUS = (408, 429)  # and every 5xx


class LLMError(RuntimeError):
    """The endpoint failed or answered something that is not what was asked for."""


def excerpt(text: str, n: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n] + " ..."


def parse_json_object(content: str) -> dict:
    """The JSON object in a model's answer, also inside ```json fences or after a sentence."""
    text = re.sub(r"<think>.*?</think>", "", content or "", flags=re.DOTALL).strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, flags=re.DOTALL | re.IGNORECASE)
    for attempt in ([fenced.group(1).strip()] if fenced else []) + [text]:
        try:
            value = json.loads(attempt)
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", text):  # a JSON object with text around it
        try:
            value, _ = decoder.raw_decode(text, m.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    raise LLMError(f"the model's answer is not a JSON object: {excerpt(content, 200)!r}")


class ChatClient:
    """``complete_json(messages) -> dict`` against ``{base_url}/chat/completions``.

    Retries connection errors, timeouts, 429 and 5xx with exponential backoff (``backoff`` s, then
    twice that, ...; a numeric Retry-After header wins); other HTTP errors fail at once, with the
    status and the start of the body. ``api_key`` defaults to $OPENAI_API_KEY (local servers need none).
    """

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = 60,
                 max_retries: int = 3, backoff: float = 1.0, max_tokens: int = 512):
        if not base_url or not model:
            raise BadInput("ChatClient needs a base_url (e.g. http://localhost:8000/v1) and a model name")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_tokens = max_tokens
        api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(timeout=timeout, headers=headers)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "ChatClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _post(self, path: str, body: dict) -> dict:
        url = f"{self.base_url}{path}"
        reason = ""
        for attempt in range(self.max_retries + 1):
            wait = self.backoff * 2 ** attempt
            try:
                response = self._http.post(url, json=body)
            except httpx.TransportError as error:  # refused, reset, timed out
                reason = f"{type(error).__name__}: {error}"
            else:
                status = response.status_code
                if status < 400:
                    try:
                        return response.json()
                    except ValueError:
                        raise LLMError(f"POST {url} answered with something that is not JSON: "
                                       f"{excerpt(response.text)!r}") from None
                if status < 500 and status not in _RETRY_STATUS:
                    hint = " (the base URL should end in /v1, e.g. http://localhost:8000/v1)" if status == 404 else ""
                    raise LLMError(f"POST {url} -> HTTP {status}{hint}: {excerpt(response.text)}")
                reason = f"HTTP {status}: {excerpt(response.text)}"
                after = response.headers.get("retry-after", "")
                if after.replace(".", "", 1).isdigit():
                    wait = min(float(after), 60.0)
            if attempt < self.max_retries:
                time.sleep(wait)
        raise LLMError(f"POST {url} failed {self.max_retries + 1} times; the last: {reason}")

    def complete(self, messages: list[dict], json_mode: bool = False) -> str:
        """The assistant's answer (temperature 0: the same prompt gives the same keywords)."""
        body = {"model": self.model, "messages": messages, "temperature": 0, "max_tokens": self.max_tokens}
        if json_mode:
            body["response_format"] = {"type": "json_object"}
        data = self._post("/chat/completions", body)
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise LLMError(f"not a chat-completions answer: {excerpt(json.dumps(data))}") from None
        if not isinstance(content, str):
            raise LLMError(f"the answer has no text content: {excerpt(json.dumps(data))}")
        return content

    def complete_json(self, messages: list[dict]) -> dict:
        """The answer parsed as a JSON object; LLMError when it is not one."""
        return parse_json_object(self.complete(messages, json_mode=True))
