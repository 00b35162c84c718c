"""Tests for chatroom.client.editor: the line being typed."""

from twisted.trial.unittest import TestCase

from chatroom.client.editor import LineEditor, display_width


def editor_with(text: str) -> LineEditor:
    editor = LineEditor()
    editor.insert(text)
    return editor


class LineEditorTests(TestCase):
    def test_insert_and_backspace_at_the_cursor(self) -> None:
        editor = editor_with("helo")
        editor.left()
        editor.insert("l")
        editor.end()
        editor.backspace()
        self.assertEqual((editor.text, editor.cursor), ("hell", 4))

    def test_erase_word_to_start_and_to_end(self) -> None:
        editor = editor_with("say hello there")
        editor.erase_word()
        self.assertEqual(editor.text, "say hello ")
        editor.left()
        editor.erase_to_end()
        self.assertEqual(editor.text, "say hello")
        editor.erase_to_start()
        self.assertEqual((editor.text, editor.cursor), ("", 0))

    def test_history_recalls_lines_and_returns_to_the_draft(self) -> None:
        editor = editor_with("first")
        editor.submit()
        editor.insert("second")
        editor.submit()
        editor.insert("draft")
        editor.previous()
        self.assertEqual(editor.text, "second")
        editor.previous()
        editor.previous()
        self.assertEqual(editor.text, "first")
        editor.next()
        editor.next()
        self.assertEqual(editor.text, "draft")

    def test_lines_not_remembered_stay_out_of_history(self) -> None:
        editor = editor_with("/p old new")
        self.assertEqual(editor.submit(remember=False), "/p old new")
        editor.previous()
        self.assertEqual(editor.text, "")

    def test_a_short_line_is_shown_whole(self) -> None:
        self.assertEqual(editor_with("hi").view(10), ("hi", 2))

    def test_a_long_line_scrolls_to_keep_the_cursor_in_view(self) -> None:
        editor = editor_with("abcdefghijklmnop")
        self.assertEqual(editor.view(8), ("jklmnop", 7))
        editor.home()
        self.assertEqual(editor.view(8), ("abcdefgh", 0))

    def test_wide_characters_take_two_columns(self) -> None:
        self.assertEqual(display_width("a你好"), 5)
        self.assertEqual(editor_with("你好吗").view(5), ("好吗", 4))
