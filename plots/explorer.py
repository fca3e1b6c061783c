"""A zoomable explorer of a whole raster with its catalogue and detections, for JupyterLab.

Bokeh draws the view; `jupyter_bokeh`'s ``BokehModel`` widget carries it into JupyterLab and
keeps Python in sync over the ipywidgets channel (the one the progress bars use). When a pan or
zoom ends, Bokeh sends one ``RangesUpdate`` event; the explorer then reads the pixels on screen
at screen resolution (:class:`plots.viewport.RasterView`) and sends only the objects inside the
view (:func:`plots.overlay.select_objects`), so neither the raster nor a large catalogue ever
travels whole. Circles are the objects' footprints in raster pixels (never thinner than a few
screen pixels), coloured by match; hovering shows pixel and world coordinates, diameter and
score, a click pins them below the view. A score slider and check boxes filter by kind and label.

Axes are raster pixels (x right, y down) for every raster; world coordinates (map units, or
RA/Dec on the sky) appear in the hover where the raster has them.

Example (in a notebook)::

    RasterExplorer("data/images/crater_field_b.tif", evaluation)
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd
from bokeh.events import Event, RangesUpdate
from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource, HoverTool, LayoutDOM, Range1d
from bokeh.models.widgets import CheckboxGroup, Div, Slider
from bokeh.plotting import figure
from bokeh.transform import factor_cmap

from model.evaluate import Evaluation
from plots.overlay import KIND_COLOURS, describe_objects, overlay_table, select_objects
from plots.viewport import RasterView
from tiling.closing import Closing

log = logging.getLogger(__name__)

#: Hover lines: (title, field) of the object columns from :func:`describe_objects`.
TOOLTIPS = [
    ("", "@kind @label"),
    ("pixel x, y", "@pixel"),
    ("world", "@world"),
    ("diameter", "@size"),
    ("score", "@score_text"),
]
#: Thinnest circle radius, in screen pixels, so small objects stay visible when zoomed out.
MIN_RADIUS_PX = 3.0


class RasterExplorer(Closing):
    """An interactive view of one raster with objects drawn on top (see the module doc).

    Args:
        raster_path: the raster the tables' pixel coordinates refer to.
        evaluation: matches to draw (true positives, false positives, missed); or give
            ``truth`` and/or ``pred`` (drawn as ``catalogue`` / ``detection``).
        truth, pred: catalogue and detections with ``x``, ``y``, ``diameter`` in pixels.
        size: the largest ``(width, height)`` of the plot frame, in screen pixels; the frame
            takes the raster's aspect inside it.
        max_objects: most circles drawn in one view (the largest first).
        base_size, stretch, hdu: for :class:`plots.viewport.RasterView`.
    """

    def __init__(
        self,
        raster_path: str | Path,
        evaluation: Evaluation | None = None,
        *,
        truth: pd.DataFrame | None = None,
        pred: pd.DataFrame | None = None,
        size: tuple[int, int] = (860, 600),
        max_objects: int = 5000,
        base_size: int = 4096,
        stretch: str = "linear",
        hdu: int | str | None = None,
    ) -> None:
        self.view = RasterView(raster_path, base_size=base_size, stretch=stretch, hdu=hdu)
        self.objects = overlay_table(evaluation, truth=truth, pred=pred)
        self.max_objects = max_objects
        self.screen = _frame_size(self.view.shape, size)
        self.bounds = (0.0, float(self.view.shape[1]), 0.0, float(self.view.shape[0]))
        self._widget: Any = None
        self._build()
        self.update(*self.bounds)

    def _build(self) -> None:
        """The Bokeh figure, its two data sources, the filter widgets and the text panels."""
        height, width = self.view.shape
        self.image_source = ColumnDataSource({"image": [], "x": [], "y": [], "dw": [], "dh": []})
        self.object_source = ColumnDataSource(self._object_data(self.objects.iloc[:0], 1.0))
        fig = figure(
            frame_width=self.screen[0],
            frame_height=self.screen[1],
            x_range=Range1d(start=0, end=width, bounds=(0, width)),
            y_range=Range1d(start=height, end=0, bounds=(0, height)),
            tools="pan,wheel_zoom,box_zoom,reset,tap",
            active_scroll="wheel_zoom",
            title=f"{self.view.path.name}: {height} x {width} px",
            x_axis_label="x (px)",
            y_axis_label="y (px)",
            background_fill_color="#808080",
        )
        fig.image_rgba(image="image", x="x", y="y", dw="dw", dh="dh", source=self.image_source)
        present = set(self.objects["kind"].unique())
        kinds = [k for k in KIND_COLOURS if k in present] or list(KIND_COLOURS)
        circles = fig.circle(
            x="x",
            y="y",
            radius="radius",
            source=self.object_source,
            fill_alpha=0.0,
            line_width=2,
            line_color=factor_cmap("kind", [KIND_COLOURS[k] for k in kinds], kinds),
            legend_field="kind",
        )
        fig.add_tools(HoverTool(renderers=[circles], tooltips=TOOLTIPS))
        fig.on_event(RangesUpdate, self._on_ranges)
        self.figure = fig
        self._build_controls(kinds)

    def _build_controls(self, kinds: list[str]) -> None:
        """Score slider, kind and label check boxes, status line and clicked-object panel."""
        labels = sorted(self.objects["label"].unique())
        scored = self.objects["score"].notna().any()
        self.score_slider = Slider(
            start=0, end=1, step=0.01, value=0, title="min score", visible=bool(scored)
        )
        self.kind_boxes = CheckboxGroup(
            labels=kinds, active=list(range(len(kinds))), inline=True, visible=len(kinds) > 1
        )
        self.label_boxes = CheckboxGroup(
            labels=labels, active=list(range(len(labels))), inline=True, visible=len(labels) > 1
        )
        self.status = Div(text="")
        self.picked = Div(text="click an object to pin its details here")
        self.score_slider.on_change("value_throttled", self._on_filter)
        for boxes in (self.kind_boxes, self.label_boxes):
            boxes.on_change("active", self._on_filter)
        self.object_source.selected.on_change("indices", self._on_pick)
        self.layout: LayoutDOM = column(
            row(self.score_slider, self.kind_boxes, self.label_boxes),
            self.figure,
            self.status,
            self.picked,
        )

    def update(self, x0: float, x1: float, y0: float, y1: float) -> None:
        """Show the view ``[x0, x1] x [y0, y1]`` (raster pixels): read its pixels and objects."""
        start = time.perf_counter()
        self.bounds = (x0, x1, y0, y1)
        frame = self.view.render(x0, x1, y0, y1, self.screen)
        if frame is None:
            self.image_source.data = {"image": [], "x": [], "y": [], "dw": [], "dh": []}
        else:
            self.image_source.data = {
                "image": [frame.rgba],
                "x": [frame.x],
                "y": [frame.y],
                "dw": [frame.dw],
                "dh": [frame.dh],
            }
        shown, n = self._select()
        per_px = max(abs(x1 - x0) / self.screen[0], abs(y1 - y0) / self.screen[1])
        self.object_source.data = self._object_data(shown, per_px)
        read = "no pixels" if frame is None else f"1:{frame.step:.1f} from the {frame.source}"
        capped = f" (the {len(shown)} largest drawn; zoom in for all)" if len(shown) < n else ""
        self.status.text = (
            f"view x {min(x0, x1):.0f}-{max(x0, x1):.0f}, y {min(y0, y1):.0f}-{max(y0, y1):.0f}"
            f" px; {read}; {n} objects{capped}; {time.perf_counter() - start:.2f} s"
        )

    def _select(self) -> tuple[pd.DataFrame, int]:
        """Objects in the current view that pass the filters."""
        kinds = [self.kind_boxes.labels[i] for i in self.kind_boxes.active]
        labels = [self.label_boxes.labels[i] for i in self.label_boxes.active]
        return select_objects(
            self.objects,
            self.bounds,
            min_score=float(self.score_slider.value),
            labels=labels if self.label_boxes.labels else None,
            kinds=kinds,
            limit=self.max_objects,
        )

    def _object_data(self, shown: pd.DataFrame, per_px: float) -> dict[str, Any]:
        """Columns of the circle source; radius at least :data:`MIN_RADIUS_PX` screen pixels.

        The hover texts are formatted here, for the drawn objects only (at most
        ``max_objects``), not for the whole catalogue when the explorer opens.
        """
        world = self.view.world
        shown = describe_objects(shown, self.view.pixel_to_world if world else None, world or "")
        fields = ["x", "y", "kind", "label", "pixel", "world", "size", "score_text"]
        data: dict[str, Any] = {f: shown[f].to_numpy() for f in fields}
        data["radius"] = (shown["diameter"] / 2).clip(lower=MIN_RADIUS_PX * per_px).to_numpy()
        return data

    def _on_ranges(self, event: Event) -> None:
        """Bokeh callback: a pan or zoom ended (a ``RangesUpdate`` with the new bounds)."""
        bounds = [getattr(event, name, None) for name in ("x0", "x1", "y0", "y1")]
        if None not in bounds:
            self.update(*(float(b) for b in bounds))  # type: ignore[arg-type]

    def _on_filter(self, attr: str, old: Any, new: Any) -> None:
        """Bokeh callback: the score slider or a check box changed."""
        self.update(*self.bounds)

    def _on_pick(self, attr: str, old: list[int], new: list[int]) -> None:
        """Bokeh callback: an object was clicked; pin its details."""
        if not new:
            return
        data = self.object_source.data
        i = new[0]
        self.picked.text = (
            f"<b>{data['kind'][i]} {data['label'][i]}</b>: pixel {data['pixel'][i]}; "
            f"world {data['world'][i]}; diameter {data['size'][i]}; score {data['score_text'][i]}"
        )

    def widget(self) -> Any:
        """The view as an ipywidget for JupyterLab (``jupyter_bokeh.BokehModel``), made once."""
        if self._widget is None:
            from jupyter_bokeh import BokehModel

            _load_bokehjs()
            self._widget = BokehModel(self.layout)
        return self._widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """Jupyter display: the live widget."""
        return self.widget()._repr_mimebundle_(**kwargs)

    def close(self) -> None:
        """Close the raster."""
        self.view.close()


def _frame_size(shape: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """``(width, height)`` in screen pixels of a raster of ``shape`` fitted inside ``box``."""
    height, width = shape
    scale = min(box[0] / width, box[1] / height)
    return max(100, round(width * scale)), max(100, round(height * scale))


def _load_bokehjs() -> None:
    """Publish BokehJS into the notebook once per kernel, inline: nothing is fetched from a CDN.

    jupyter_bokeh's widget view draws with the page's BokehJS; the inline bundle (about 4 MB of
    JavaScript in the cell's output) keeps the explorer working on machines without internet.
    """
    from bokeh.io import output_notebook
    from bokeh.io.state import curstate
    from bokeh.resources import INLINE

    if not curstate().notebook:
        output_notebook(resources=INLINE, hide_banner=True)
