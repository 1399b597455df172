//! An append-only log file that lasts months: rotation by size and by (packet) time,
//! compression of rotated files in the background, retention by age and total size, reopen
//! on request (SIGHUP, for external rotators), and crash safety — lines are written whole, and
//! a file left with a torn last line by a killed process is cut back to its last newline when
//! reopened, so every line on disk is a complete record.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
}

/// When to rotate and what to keep.
#[derive(Clone, Debug)]
pub struct RotatePolicy {
    /// Rotate when the file reaches this many bytes (0 = never by size).
    pub max_bytes: u64,
    /// Rotate when this much time (event time) has passed since the file was opened (0 = never).
    pub max_age_ns: i64,
    pub compression: Compression,
    /// Delete rotated files older than this (wall clock, by modification time; 0 = keep).
    pub retention: Duration,
    /// Delete the oldest rotated files while they total more than this (0 = no limit).
    pub retention_bytes: u64,
}

impl Default for RotatePolicy {
    fn default() -> Self {
        Self {
            max_bytes: 0,
            max_age_ns: 0,
            compression: Compression::None,
            retention: Duration::ZERO,
            retention_bytes: 0,
        }
    }
}

pub struct RotatingFile {
    path: PathBuf,
    out: BufWriter<File>,
    policy: RotatePolicy,
    /// Bytes in the current file.
    size: u64,
    /// Event time the current file started at (first write after opening).
    opened_at: Option<i64>,
    /// Background compressions still running (joined on drop).
    jobs: Vec<std::thread::JoinHandle<()>>,
    pub rotations: u64,
    pub errors: u64,
}

/// Cuts a file back to just after its last newline (a torn last line from a crash).
fn repair(path: &Path) -> std::io::Result<u64> {
    let mut f = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(0);
    }
    // Scan back from the end in blocks for the last '\n'.
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let start = end.saturating_sub(buf.len() as u64);
        let n = (end - start) as usize;
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            let keep = start + i as u64 + 1;
            if keep != len {
                f.set_len(keep)?;
            }
            return Ok(keep);
        }
        if start == 0 {
            f.set_len(0)?;
            return Ok(0);
        }
        end = start;
    }
}

fn open_append(path: &Path) -> std::io::Result<(BufWriter<File>, u64)> {
    let size = repair(path)?;
    let f = OpenOptions::new().create(true).append(true).open(path)?;
    Ok((BufWriter::with_capacity(1 << 18, f), size))
}

impl RotatingFile {
    pub fn open(path: PathBuf, policy: RotatePolicy) -> Result<Self, String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let (out, size) = open_append(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self {
            path,
            out,
            policy,
            size,
            opened_at: None,
            jobs: Vec::new(),
            rotations: 0,
            errors: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line (without its newline) stamped with event time `ts`; rotates first if
    /// the policy says so. The line and its newline go out in one write, so a flush never
    /// splits a record.
    pub fn write_line(&mut self, line: &mut Vec<u8>, ts: i64) -> bool {
        line.push(b'\n');
        let ok = self.write_line_nl(line, ts);
        line.pop();
        ok
    }

    /// Writes one line that already ends in `\n`, rotating first when it is due.
    pub fn write_line_nl(&mut self, line_nl: &[u8], ts: i64) -> bool {
        if self.rotation_due(ts, line_nl.len()) {
            self.rotate(ts);
        }
        let ok = self.out.write_all(line_nl).is_ok();
        if ok {
            self.size += line_nl.len() as u64;
        } else {
            self.errors += 1;
        }
        ok
    }

    /// Writes many lines that already end in `\n` (`marks`: each line's event time and end
    /// offset in `lines`), rotating between exactly the lines [`Self::write_line_nl`] would
    /// rotate between; the lines between two rotations go out in one write, which a chunk
    /// larger than the buffer takes straight to the file without copying. Lines of one byte
    /// (a bare newline) are skipped. Returns the lines written.
    pub fn write_lines_nl(&mut self, lines: &[u8], marks: &[(i64, u32)]) -> u64 {
        let mut written = 0;
        // Unwritten run: lines[run..start], `run_lines` lines.
        let mut run = 0usize;
        let mut run_lines = 0u64;
        let mut start = 0usize;
        for &(ts, end) in marks {
            let end = (end as usize).clamp(start, lines.len());
            let len = end - start;
            if len <= 1 {
                written += self.write_run(lines.get(run..start), run_lines);
                (run, run_lines, start) = (end, 0, end);
                continue;
            }
            if self.rotation_due(ts, len) {
                written += self.write_run(lines.get(run..start), run_lines);
                (run, run_lines) = (start, 0);
                self.rotate(ts);
            }
            // Counted ahead of the write, so the size test above sees the pending lines.
            self.size += len as u64;
            run_lines += 1;
            start = end;
        }
        written + self.write_run(lines.get(run..start), run_lines)
    }

    /// The policy says to rotate before a line of `len` bytes stamped `ts` (an empty file
    /// never rotates).
    fn rotation_due(&mut self, ts: i64, len: usize) -> bool {
        let opened = *self.opened_at.get_or_insert(ts);
        let by_size = self.policy.max_bytes > 0 && self.size + len as u64 > self.policy.max_bytes;
        let by_age =
            self.policy.max_age_ns > 0 && ts.saturating_sub(opened) >= self.policy.max_age_ns;
        self.size > 0 && (by_size || by_age)
    }

    /// Writes `n` pending lines; a failed write counts each as an error and takes their
    /// bytes back off the size.
    fn write_run(&mut self, bytes: Option<&[u8]>, n: u64) -> u64 {
        let Some(bytes) = bytes.filter(|_| n > 0) else {
            return 0;
        };
        if self.out.write_all(bytes).is_ok() {
            n
        } else {
            self.errors += n;
            self.size = self.size.saturating_sub(bytes.len() as u64);
            0
        }
    }

    pub fn flush(&mut self) {
        if self.out.flush().is_err() {
            self.errors += 1;
        }
    }

    /// Reopens the path (after an external rotator moved the file away).
    pub fn reopen(&mut self) {
        self.flush();
        match open_append(&self.path) {
            Ok((out, size)) => {
                self.out = out;
                self.size = size;
                self.opened_at = None;
            }
            Err(_) => self.errors += 1,
        }
    }

    /// Moves the current file aside as `NAME.<time>[.N]`, compresses it in the background,
    /// applies retention, and starts a new file.
    pub fn rotate(&mut self, ts: i64) {
        self.flush();
        let stamp = crate::timefmt::eve_ts(ts)
            .chars()
            .filter(|c| c.is_ascii_digit())
            .take(14)
            .collect::<String>();
        let base = format!("{}.{stamp}", self.path.display());
        let mut target = PathBuf::from(&base);
        let mut n = 1;
        while target.exists() || PathBuf::from(format!("{}.gz", target.display())).exists() {
            target = PathBuf::from(format!("{base}.{n}"));
            n += 1;
        }
        if std::fs::rename(&self.path, &target).is_err() {
            self.errors += 1;
            return;
        }
        self.rotations += 1;
        match open_append(&self.path) {
            Ok((out, size)) => {
                self.out = out;
                self.size = size;
                self.opened_at = Some(ts);
            }
            Err(_) => self.errors += 1,
        }
        self.jobs.retain(|j| !j.is_finished());
        let policy = self.policy.clone();
        let live = self.path.clone();
        let job = std::thread::Builder::new()
            .name("log-rotate".into())
            .spawn(move || {
                if policy.compression == Compression::Gzip {
                    let _ = gzip_file(&target);
                }
                apply_retention(&live, &policy);
            });
        match job {
            Ok(j) => self.jobs.push(j),
            Err(_) => self.errors += 1,
        }
    }
}

impl Drop for RotatingFile {
    fn drop(&mut self) {
        self.flush();
        for j in self.jobs.drain(..) {
            let _ = j.join();
        }
    }
}

/// `FILE` → `FILE.gz` (written to a temporary name, then renamed: never a half file).
fn gzip_file(path: &Path) -> std::io::Result<()> {
    let gz = PathBuf::from(format!("{}.gz", path.display()));
    let tmp = PathBuf::from(format!("{}.gz.tmp", path.display()));
    {
        let mut input = File::open(path)?;
        let out = File::create(&tmp)?;
        let mut enc =
            flate2::write::GzEncoder::new(BufWriter::new(out), flate2::Compression::default());
        std::io::copy(&mut input, &mut enc)?;
        enc.finish()?.flush()?;
    }
    std::fs::rename(&tmp, &gz)?;
    std::fs::remove_file(path)
}

/// Rotated siblings of `live` (`live.*`, not the live file, not temporaries).
pub fn rotated_files(live: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (live.parent(), live.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let prefix = format!("{name}.");
    let Ok(rd) = std::fs::read_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && !n.ends_with(".tmp"))
        })
        .collect();
    v.sort();
    v
}

fn apply_retention(live: &Path, policy: &RotatePolicy) {
    let now = SystemTime::now();
    let mut files: Vec<(SystemTime, u64, PathBuf)> = rotated_files(live)
        .into_iter()
        .filter_map(|p| {
            let m = std::fs::metadata(&p).ok()?;
            Some((m.modified().unwrap_or(now), m.len(), p))
        })
        .collect();
    files.sort();
    if !policy.retention.is_zero() {
        files.retain(|(t, _, p)| {
            let old = now.duration_since(*t).unwrap_or_default() > policy.retention;
            if old {
                let _ = std::fs::remove_file(p);
            }
            !old
        });
    }
    if policy.retention_bytes > 0 {
        let mut total: u64 = files.iter().map(|(_, s, _)| s).sum();
        for (_, s, p) in &files {
            if total <= policy.retention_bytes {
                break;
            }
            if std::fs::remove_file(p).is_ok() {
                total = total.saturating_sub(*s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("kizuki-rotate-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn count_lines(dir: &Path) -> usize {
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let f = File::open(&p).unwrap();
            let r: Box<dyn Read> = if p.extension().is_some_and(|x| x == "gz") {
                Box::new(flate2::read::GzDecoder::new(f))
            } else {
                Box::new(f)
            };
            for l in std::io::BufReader::new(r).lines() {
                let l = l.unwrap();
                assert!(l.starts_with('{') && l.ends_with('}'), "torn line {l:?}");
                n += 1;
            }
        }
        n
    }

    #[test]
    fn rotation_by_size_and_time_loses_nothing() {
        let dir = tmpdir("size");
        let policy = RotatePolicy {
            max_bytes: 4096,
            max_age_ns: 60_000_000_000,
            compression: Compression::Gzip,
            ..Default::default()
        };
        {
            let mut f = RotatingFile::open(dir.join("eve.json"), policy).unwrap();
            for i in 0..2000i64 {
                let mut line = format!(
                    "{{\"n\":{i},\"pad\":\"{}\"}}",
                    "x".repeat((i % 50) as usize)
                )
                .into_bytes();
                assert!(f.write_line(&mut line, i * 100_000_000));
            }
            assert!(f.rotations > 5);
        }
        assert_eq!(count_lines(&dir), 2000);
        assert!(rotated_files(&dir.join("eve.json"))
            .iter()
            .all(|p| p.extension().is_some_and(|x| x == "gz")));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Every file in `dir` by name, with its bytes.
    fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&p).unwrap())
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writing_many_lines_at_once_rotates_where_line_by_line_does() {
        let policy = RotatePolicy {
            max_bytes: 3000,
            max_age_ns: 40_000_000_000,
            ..Default::default()
        };
        let line = |i: i64| {
            format!(
                "{{\"n\":{i},\"pad\":\"{}\"}}\n",
                "y".repeat((i % 37) as usize)
            )
        };
        let ts = |i: i64| i * 70_000_000;
        let (one, many) = (tmpdir("one"), tmpdir("many"));
        {
            let mut f = RotatingFile::open(one.join("eve.json"), policy.clone()).unwrap();
            for i in 0..3000 {
                assert!(f.write_line_nl(line(i).as_bytes(), ts(i)));
            }
            let mut g = RotatingFile::open(many.join("eve.json"), policy).unwrap();
            let mut i = 0;
            let mut chunk = 1;
            while i < 3000 {
                let (mut buf, mut marks) = (Vec::new(), Vec::new());
                for j in i..(i + chunk).min(3000) {
                    buf.extend_from_slice(line(j).as_bytes());
                    marks.push((ts(j), buf.len() as u32));
                }
                assert_eq!(g.write_lines_nl(&buf, &marks), marks.len() as u64);
                i += chunk;
                chunk = chunk * 3 % 97 + 1;
            }
            assert!(f.rotations > 20);
            assert_eq!(f.rotations, g.rotations);
        }
        assert_eq!(files_of(&one), files_of(&many));
        let _ = std::fs::remove_dir_all(&one);
        let _ = std::fs::remove_dir_all(&many);
    }

    #[test]
    fn torn_last_line_is_cut_on_reopen() {
        let dir = tmpdir("torn");
        let p = dir.join("eve.json");
        std::fs::write(&p, "{\"a\":1}\n{\"b\":2}\n{\"c\":").unwrap();
        {
            let mut f = RotatingFile::open(p.clone(), RotatePolicy::default()).unwrap();
            f.write_line(&mut b"{\"d\":4}".to_vec(), 0);
        }
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"a\":1}\n{\"b\":2}\n{\"d\":4}\n"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn retention_by_total_size() {
        let dir = tmpdir("ret");
        let policy = RotatePolicy {
            max_bytes: 1000,
            retention_bytes: 3000,
            ..Default::default()
        };
        {
            let mut f = RotatingFile::open(dir.join("eve.json"), policy).unwrap();
            for i in 0..1000i64 {
                f.write_line(&mut format!("{{\"n\":{i:08}}}").into_bytes(), i);
            }
        }
        let total: u64 = rotated_files(&dir.join("eve.json"))
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum();
        assert!(total <= 3000, "{total}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
