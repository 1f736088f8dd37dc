"""Pieces of the docks' forms: a path box with a dialog, a status line, rows and columns."""

from __future__ import annotations

import os
from pathlib import Path

from qtpy.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class PathPicker(QWidget):
    """A line edit with a "..." button opening a folder or file dialog."""

    def __init__(self, mode: str = "dir", caption: str = "Choose", file_filter: str = "", parent=None):
        super().__init__(parent)
        if mode not in ("dir", "open", "save"):
            raise ValueError(f"mode must be 'dir', 'open' or 'save', not {mode!r}")
        self._mode, self._caption, self._filter = mode, caption, file_filter
        self._confirmed: Path | None = None  # a save dialog asked the user before replacing this file
        self.edit = QLineEdit()
        button = QPushButton("…")
        button.setMaximumWidth(30)
        button.clicked.connect(self._browse)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit)
        layout.addWidget(button)

    def _browse(self) -> None:
        start = self.edit.text() or os.getcwd()
        if self._mode == "dir":
            chosen = QFileDialog.getExistingDirectory(self, self._caption, start)
        elif self._mode == "open":
            chosen, _ = QFileDialog.getOpenFileName(self, self._caption, start, self._filter)
        else:
            chosen, _ = QFileDialog.getSaveFileName(self, self._caption, start, self._filter)
        if chosen:
            self.edit.setText(chosen)
            if self._mode == "save":
                self._confirmed = Path(chosen).expanduser()

    def confirmed(self, path: Path) -> bool:
        """Whether the user chose ``path`` in the save dialog, which asks before replacing a file."""
        return self._confirmed is not None and self._confirmed == path

    def path(self) -> Path | None:
        text = self.edit.text().strip()
        return Path(text).expanduser() if text else None

    def set_path(self, path) -> None:
        self.edit.setText(str(path))


def status_label() -> QLabel:
    """An empty, word-wrapping label for a dock's status line."""
    label = QLabel("")
    label.setWordWrap(True)
    return label


def row(*widgets: QWidget) -> QHBoxLayout:
    """The widgets side by side."""
    layout = QHBoxLayout()
    for widget in widgets:
        layout.addWidget(widget)
    return layout


def stack(parent: QWidget, *items) -> QVBoxLayout:
    """Lay out widgets, layouts and captions (strings) top to bottom in ``parent``."""
    layout = QVBoxLayout(parent)
    for item in items:
        if isinstance(item, str):
            layout.addWidget(QLabel(item))
        elif isinstance(item, QLayout):
            layout.addLayout(item)
        else:
            layout.addWidget(item)
    layout.addStretch(1)
    return layout
