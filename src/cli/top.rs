//! `flowbridge top [ADMIN_URL]`: the live view of a running flowbridge ([`crate::top`]), redrawn
//! every `--interval` in the terminal's alternate screen (crossterm), cut to its size and
//! redrawn when it resizes; `q`, Esc or Ctrl-C quits. `--once` prints one plain table (two
//! scrapes an interval apart) for pipes and scripts.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyCode, KeyModifiers};
use crossterm::{cursor, execute, queue, terminal};

use super::args::TopArgs;
use crate::top::{scrape, view};

const TIMEOUT: Duration = Duration::from_secs(3);

fn samples(url: &str) -> Result<Vec<scrape::Sample>, String> {
    scrape::parse(&scrape::get(url, TIMEOUT)?)
}

pub fn top(args: &TopArgs) -> ExitCode {
    let result = if args.once { once(args) } else { live(args) };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flowbridge top: {e}");
            ExitCode::FAILURE
        }
    }
}

fn once(args: &TopArgs) -> Result<(), String> {
    let before = samples(&args.url)?;
    let started = Instant::now();
    std::thread::sleep(args.interval);
    let now = samples(&args.url)?;
    let v = view::build(&before, &now, started.elapsed().as_secs_f64());
    print!("{}", view::render(&v, &args.url, usize::MAX));
    Ok(())
}

/// Leaves the alternate screen and raw mode however `live` ends.
struct Screen;

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = execute!(
            std::io::stdout(),
            cursor::Show,
            terminal::LeaveAlternateScreen
        );
        let _ = terminal::disable_raw_mode();
    }
}

fn live(args: &TopArgs) -> Result<(), String> {
    let mut before = samples(&args.url)?;
    let mut taken = Instant::now();
    terminal::enable_raw_mode().map_err(|e| format!("not a terminal ({e}); use --once"))?;
    let _screen = Screen;
    let mut out = std::io::stdout();
    execute!(out, terminal::EnterAlternateScreen, cursor::Hide).map_err(|e| e.to_string())?;
    let mut shown = view::View::default();
    let mut status = "collecting…".to_string();
    draw(&mut out, &shown, &args.url, &status)?;
    loop {
        let due = taken + args.interval;
        loop {
            let left = due.saturating_duration_since(Instant::now());
            if left.is_zero() || !event::poll(left).map_err(|e| e.to_string())? {
                break;
            }
            match event::read().map_err(|e| e.to_string())? {
                Event::Key(k)
                    if k.code == KeyCode::Char('q')
                        || k.code == KeyCode::Esc
                        || (k.code == KeyCode::Char('c')
                            && k.modifiers.contains(KeyModifiers::CONTROL)) =>
                {
                    return Ok(());
                }
                Event::Resize(..) => draw(&mut out, &shown, &args.url, &status)?,
                _ => {}
            }
        }
        match samples(&args.url) {
            Ok(now) => {
                let seconds = taken.elapsed().as_secs_f64();
                taken = Instant::now();
                shown = view::build(&before, &now, seconds);
                before = now;
                status = format!(
                    "every {} — q quits",
                    humantime::format_duration(args.interval)
                );
            }
            Err(e) => {
                taken = Instant::now();
                status = format!("scrape failed: {e}");
            }
        }
        draw(&mut out, &shown, &args.url, &status)?;
    }
}

fn draw(out: &mut std::io::Stdout, v: &view::View, url: &str, status: &str) -> Result<(), String> {
    let (width, height) = terminal::size().unwrap_or((80, 24));
    let text = view::render(v, url, usize::from(width));
    queue!(
        out,
        cursor::MoveTo(0, 0),
        terminal::Clear(terminal::ClearType::All)
    )
    .map_err(|e| e.to_string())?;
    let rows = usize::from(height).saturating_sub(1);
    for line in text.lines().take(rows) {
        write!(out, "{line}\r\n").map_err(|e| e.to_string())?;
    }
    let status: String = status.chars().take(usize::from(width)).collect();
    queue!(out, cursor::MoveTo(0, height.saturating_sub(1))).map_err(|e| e.to_string())?;
    write!(out, "{status}").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())
}
