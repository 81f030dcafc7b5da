"""Word lists the pattern rules use: languages, tools, reply styles, assistant verbs."""

from __future__ import annotations


def _words(text: str) -> list[str]:
    return text.split()


LANGUAGES = _words(
    "english portuguese spanish french german italian dutch russian chinese mandarin japanese "
    "korean arabic hindi turkish polish swedish norwegian danish finnish greek hebrew czech "
    "ukrainian romanian hungarian vietnamese thai indonesian catalan"
)
PROGRAMMING = _words(
    "python javascript typescript java kotlin scala rust go golang c++ c# haskell ruby php "
    "swift elixir erlang clojure lua perl julia r sql bash zig ocaml f#"
)
EDITORS = _words("vim neovim emacs vscode vs code pycharm intellij sublime nano helix")
SYSTEMS = _words("linux macos windows ubuntu debian fedora arch freebsd")
CATEGORY_WORDS = {
    "programming_language": (PROGRAMMING, ["code", "script", "function", "program"]),
    "editor": (EDITORS, ["editor", "ide", "editing"]),
    "operating_system": (SYSTEMS, ["install", "setup", "command", "terminal"]),
}
SHORT = _words("short shorter brief briefer concise succinct terse compact")
LONG = _words("detailed long longer thorough in-depth comprehensive elaborate verbose")
TONES = _words("formal informal casual friendly polite direct blunt professional playful serious")
# Objects that make "don't use X" a reply-style rule rather than a one-off remark.
STYLE_WORDS = _words(
    "emoji emojis emoticons jargon markdown bullet bullets tables headings headers exclamation "
    "slang abbreviations acronyms semicolons oxford comma disclaimers caveats apologies "
    "apologize apologise filler type hints comments docstrings tabs spaces metric imperial "
    "units celsius fahrenheit citations sources references examples code blocks summary "
    "summaries tl;dr swearing profanity contractions passive voice"
)
ASSISTANT_VERBS = frozenset(
    _words(
        "answer reply respond write use include add keep give format show explain call address "
        "speak talk avoid start end sign cite provide summarize summarise mention put be stick "
        "refer return comment document prefer assume suggest ask check double-check label "
        "number spell round convert quote make remind tell greet list lead open close mark "
        "sort group highlight link"
    )
)
STOP = frozenset(
    _words(
        "a an the to of and or in on at for with my your me i you it this that is are be "
        "please always never all any every some more most very really just also so them "
        "their our we us do does"
    )
)
