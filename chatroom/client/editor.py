"""
The line being typed, as plain state: text, cursor and history, and which
part of it fits on one screen row. No terminal I/O here.
"""

import unicodedata


def display_width(text: str) -> int:
    """Terminal columns C{text} takes: wide East Asian characters take two."""
    return sum(_character_width(character) for character in text)


def _character_width(character: str) -> int:
    if unicodedata.combining(character):
        return 0
    return 2 if unicodedata.east_asian_width(character) in "WF" else 1


class LineEditor:
    """
    An editable line with a cursor and an in-memory history that the up and
    down keys walk, as in a shell.
    """

    def __init__(self) -> None:
        self.text = ""
        self.cursor = 0
        self._history: list[str] = []
        self._recalled = 0
        self._draft = ""

    def insert(self, characters: str) -> None:
        self.text = self.text[: self.cursor] + characters + self.text[self.cursor :]
        self.cursor += len(characters)

    def backspace(self) -> None:
        if self.cursor:
            self.text = self.text[: self.cursor - 1] + self.text[self.cursor :]
            self.cursor -= 1

    def delete(self) -> None:
        self.text = self.text[: self.cursor] + self.text[self.cursor + 1 :]

    def left(self) -> None:
        self.cursor = max(self.cursor - 1, 0)

    def right(self) -> None:
        self.cursor = min(self.cursor + 1, len(self.text))

    def home(self) -> None:
        self.cursor = 0

    def end(self) -> None:
        self.cursor = len(self.text)

    def erase_to_start(self) -> None:
        self.text = self.text[self.cursor :]
        self.cursor = 0

    def erase_to_end(self) -> None:
        self.text = self.text[: self.cursor]

    def erase_word(self) -> None:
        before = self.text[: self.cursor].rstrip()
        start = before.rfind(" ") + 1
        self.text = self.text[:start] + self.text[self.cursor :]
        self.cursor = start

    def previous(self) -> None:
        if self._recalled == 0:
            return
        if self._recalled == len(self._history):
            self._draft = self.text
        self._recalled -= 1
        self._show(self._history[self._recalled])

    def next(self) -> None:
        if self._recalled == len(self._history):
            return
        self._recalled += 1
        if self._recalled == len(self._history):
            self._show(self._draft)
        else:
            self._show(self._history[self._recalled])

    def submit(self, remember: bool = True) -> str:
        """Take the line, leaving the editor empty; keep it in the history."""
        line = self.text
        if remember and line:
            self._history.append(line)
        self._recalled = len(self._history)
        self._show("")
        return line

    def view(self, columns: int) -> tuple[str, int]:
        """
        The part of the line to draw in C{columns} and the cursor's column in
        it: a long line scrolls sideways rather than wrapping, so that a
        redraw only ever has one row to erase.
        """
        start, before = self.cursor, 0
        # One column stays free for the cursor at the end of the line.
        while start and before + _character_width(self.text[start - 1]) < columns:
            start -= 1
            before += _character_width(self.text[start])
        end, used = start, 0
        while end < len(self.text):
            width = _character_width(self.text[end])
            if used + width > columns:
                break
            end, used = end + 1, used + width
        return self.text[start:end], before

    def _show(self, text: str) -> None:
        self.text = text
        self.cursor = len(text)
