"""The chat's screen on its own: word wrapping and the footer, on a small emulator."""

from __future__ import annotations

import io

from voxta_proto.cli.terminal import Screen, _next_key

from .programs import render

WIDTH = 20


def screen() -> tuple[Screen, io.StringIO]:
    out = io.StringIO()
    return Screen(out, tty=True, color=True, width=WIDTH), out


def test_lines_wrap_between_words_and_keep_their_indent() -> None:
    shown, out = screen()
    shown.line("  /retry   ask for another reply to your last message")
    assert render(out.getvalue(), WIDTH) == [
        "  /retry   ask for", "another reply to", "your last message", ""]


def test_a_streamed_reply_wraps_across_chunks_with_styles_taking_no_room() -> None:
    shown, out = screen()
    label = shown.style("Bea: ", "bold")
    for chunk in ("Once upon a time", " there was", " a very small", " dragon."):
        shown.stream("m1", label, chunk)
    assert shown.end_stream("m1")
    lines = render(out.getvalue(), WIDTH)
    assert lines == ["Bea: Once upon a", "time there was a", "very small dragon.", ""]


def test_the_footer_sits_below_an_open_reply_and_goes_when_it_ends() -> None:
    shown, out = screen()
    shown.prompt("you> ")                   # idle: the prompt
    shown.stream("m1", "Bea: ", "Hello")    # a reply replaces it...
    assert render(out.getvalue(), WIDTH) == ["Bea: Hello"]
    shown.edit("hi th", 5)                  # ...and what is typed goes below it
    shown.stream("m1", "Bea: ", " there!")
    assert render(out.getvalue(), WIDTH) == ["Bea: Hello there!", "you> hi th"]
    assert shown.end_stream("m1")
    assert render(out.getvalue(), WIDTH) == ["Bea: Hello there!", "you> hi th"]
    shown.commit()                          # Enter: the line joins the transcript
    shown.line("[reply cancelled]")
    assert render(out.getvalue(), WIDTH) == ["Bea: Hello there!", "you> hi th",
                                             "[reply cancelled]", ""]


def test_escape_sequences_are_one_key_and_may_arrive_split() -> None:
    assert _next_key("\x1b[3~x") == ("\x1b[3~", "x")
    assert _next_key("\x1b[") == (None, "\x1b[")
    assert _next_key("\x1bOA") == ("\x1bOA", "")
    assert _next_key("é!") == ("é", "!")
