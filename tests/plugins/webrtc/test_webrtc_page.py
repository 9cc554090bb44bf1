"""The page as served: the elements the browser tests and users rely on are there.

Fast and browser-free: it fetches ``/`` and the static files from a served
transport and checks the markup, the style sheet and the script by structure.
"""

from __future__ import annotations

from html.parser import HTMLParser

from webrtc_helpers import serving


class Outline(HTMLParser):
    """Every element's attributes by id, and each element's ancestors' ids."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, str | None]] = {}
        self.tags: dict[str, str] = {}
        self.parents: dict[str, list[str]] = {}
        self._stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        ident = found.get("id") or ""
        if ident:
            self.by_id[ident] = found
            self.tags[ident] = tag
            self.parents[ident] = [p for p in self._stack if p]
        if tag not in {"meta", "link", "br", "img", "input"}:
            self._stack.append(ident)

    def handle_endtag(self, tag: str) -> None:
        if self._stack and tag not in {"meta", "link", "br", "img", "input"}:
            self._stack.pop()


async def fetch_page() -> tuple[Outline, str, str]:
    async with serving() as served:
        async with served.http.get(f"{served.url}/?token={served.token}") as resp:
            assert resp.status == 200
            html = await resp.text()
        async with served.http.get(f"{served.url}/webrtc/static/style.css") as resp:
            assert resp.status == 200
            css = await resp.text()
        async with served.http.get(f"{served.url}/webrtc/static/app.js") as resp:
            assert resp.status == 200
            js = await resp.text()
    outline = Outline()
    outline.feed(html)
    return outline, css, js


async def test_the_header_holds_the_button_the_states_and_the_mic_meter() -> None:
    page, css, _ = await fetch_page()
    for ident in ("toggle", "agent-state", "user-state", "mic-level"):
        assert "bar" in page.parents[ident], f"#{ident} must be in the sticky header"
    assert page.tags["bar"] == "header"
    assert page.tags["mic-level"] == "meter"
    assert page.by_id["mic-level"]["min"] == "0" and page.by_id["mic-level"]["max"] == "1"
    # The header stays put while the transcript scrolls.
    bar_rule = css.split("#bar {", 1)[1].split("}", 1)[0]
    assert "position: sticky" in bar_rule and "top: 0" in bar_rule


async def test_the_transcript_is_announced_and_every_state_is_rendered() -> None:
    page, css, js = await fetch_page()
    transcript = page.by_id["transcript"]
    assert page.tags["transcript"] == "ol"
    assert transcript["aria-live"] == "polite" and transcript["aria-label"]
    assert page.by_id["notice"]["role"] == "status"
    # The script handles the forwarded events the new states come from.
    for event in ("user_state_changed", "agent_state_changed", "on_speech_in", "agent_turn", "metrics_collected"):
        assert f'case "{event}"' in js, event
    for shown in ("recognising…", "thinking…", "interrupted", '"You"', '"Agent"', "createAnalyser"):
        assert shown in js, shown
    for stage in ("stt_latency", "eou_delay", "llm_ttft", "tts_ttfb", "e2e_latency"):
        assert stage in js, stage
    # Interruptions and sides are styled by more than colour.
    assert '[data-interrupted="true"]' in css and "dashed" in css
    assert 'li[data-role="user"]' in css and "align-self: flex-end" in css
