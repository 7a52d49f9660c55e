//! The report's PNG charts: every latency figure against the others, and concurrency by load.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle};

use crate::report::{ms, Report};

/// Debian's fonts; the bitmap backend has no font of its own.
const FONTS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

fn plot<T, E: std::fmt::Debug>(result: Result<T, E>) -> anyhow::Result<T> {
    result.map_err(|err| anyhow::anyhow!("drawing a chart: {err:?}"))
}

pub(crate) fn load_font() -> anyhow::Result<()> {
    let Some(bytes) = FONTS.iter().find_map(|path| std::fs::read(path).ok()) else {
        anyhow::bail!("no TrueType font at {FONTS:?} (`cargo xtask setup` installs fonts-dejavu-core)");
    };
    // Registered fonts live as long as the process; this runs once.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plot(register_font("sans-serif", FontStyle::Normal, bytes).map_err(|_| "not a usable TrueType font"))
}

/// One row a figure: a bar to p50 and a tick at p95, on a log scale, floors in grey.
pub(crate) fn latency(report: &Report, path: &Path) -> anyhow::Result<()> {
    let figures: Vec<_> = report.figures.iter().filter(|f| f.p50_ms.is_some()).collect();
    let n = figures.len().max(1);
    let height = 80 + 24 * n as u32;
    let root = BitMapBackend::new(path, (1400, height)).into_drawing_area();
    plot(root.fill(&WHITE))?;
    let (_, right) = root.split_horizontally(560);
    let x_max = figures.iter().filter_map(|f| f.p95_ms).fold(1.0, f64::max) * 2.0;
    let mut chart = plot(
        ChartBuilder::on(&right)
            .caption("p50 (bar) and p95 (tick), ms, log scale", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .build_cartesian_2d((0.1f64..x_max).log_scale(), 0f64..n as f64),
    )?;
    plot(chart.configure_mesh().disable_y_mesh().y_labels(0).x_desc("ms").draw())?;
    let label = TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, f) in figures.iter().enumerate() {
        let y = (n - 1 - i) as f64;
        let (p50, p95) = (f.p50_ms.unwrap_or(0.1).max(0.1), f.p95_ms.unwrap_or(0.1).max(0.1));
        let color = if f.name.starts_with("floor") { RGBColor(150, 150, 150) } else { RGBColor(60, 110, 180) };
        plot(chart.draw_series(std::iter::once(Rectangle::new([(0.1, y + 0.2), (p50, y + 0.8)], color.filled()))))?;
        plot(
            chart.draw_series(std::iter::once(Rectangle::new([(p95, y + 0.1), (p95 * 1.03, y + 0.9)], BLACK.filled()))),
        )?;
        let (_, py) = chart.backend_coord(&(1.0, y + 0.5));
        let text = format!("{}  ({} / {})", f.name, ms(f.p50_ms), ms(f.p95_ms));
        plot(root.draw(&Text::new(text, (8, py), label.clone())))?;
    }
    plot(root.present())
}

/// p95 to the first stdout byte and throughput, by the number of concurrent turns.
pub(crate) fn concurrency(report: &Report, path: &Path) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, (1200, 450)).into_drawing_area();
    plot(root.fill(&WHITE))?;
    let (left, right) = root.split_horizontally(600);
    let rows = &report.concurrency;
    let x_max = rows.iter().map(|c| c.turns).max().unwrap_or(32) as f64 + 4.0;
    let p95: Vec<(f64, f64)> = rows.iter().filter_map(|c| Some((c.turns as f64, c.first_byte_p95_ms?))).collect();
    let rate: Vec<(f64, f64)> = rows.iter().map(|c| (c.turns as f64, c.throughput_per_s)).collect();
    line_panel(&left, "POST → first stdout byte, p95 (ms)", x_max, &p95, RED)?;
    line_panel(&right, "throughput (turns/s)", x_max, &rate, BLUE)?;
    plot(root.present())
}

/// One panel of the concurrency chart: `points` as a line with dots, against concurrent turns.
fn line_panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    caption: &str,
    x_max: f64,
    points: &[(f64, f64)],
    color: RGBColor,
) -> anyhow::Result<()> {
    let y_max = points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.2;
    let mut chart = plot(
        ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 18))
            .margin(15)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max),
    )?;
    plot(chart.configure_mesh().x_desc("concurrent turns").draw())?;
    plot(chart.draw_series(LineSeries::new(points.to_vec(), color.stroke_width(2))))?;
    plot(chart.draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled()))))?;
    Ok(())
}
