"""The five stage docks opened from the plugin share one column of tabs that fits a 1080p screen."""

from __future__ import annotations

from qtpy.QtWidgets import QDockWidget

PLUGIN = "napari-synthseg"
STAGES = ("1 Auto-segment", "2 Synthesize", "3 Train", "4 Segment", "5 Curate")
#: A 1080p screen less napari's menu bar, the window title and a task bar.
SCREEN_HEIGHT_PX = 1080 - 120


def test_the_stages_open_as_tabs_that_fit_a_1080p_screen(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(1600, 1000)
    docks = []
    for name in STAGES:  # as the Plugins menu opens them: napari's default is one under another
        dock, _ = viewer.window.add_plugin_dock_widget(PLUGIN, name)
        docks.append(dock)
    qtbot.waitUntil(lambda: len(window.tabifiedDockWidgets(docks[-1])) == len(STAGES) - 1, timeout=5_000)
    for dock in docks:
        assert set(window.tabifiedDockWidgets(dock)) == set(docks) - {dock}
    assert not docks[-1].visibleRegion().isEmpty()  # the stage opened last is the tab in front
    assert docks[0].visibleRegion().isEmpty()
    # one stage shows at a time: the right-hand column is as tall as the tallest stage, not their sum
    right = [dock for dock in window.findChildren(QDockWidget) if dock in docks]
    tallest = max(dock.minimumSizeHint().height() for dock in right)
    print(f"\ntallest stage dock: {tallest} px")
    assert tallest <= SCREEN_HEIGHT_PX
