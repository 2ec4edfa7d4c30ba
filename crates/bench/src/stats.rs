//! Measurements: a process tree's CPU time and memory from `/proc`, and latency percentiles.

use std::collections::HashMap;
use std::time::Instant;

use hdrhistogram::Histogram;
use serde::Serialize;

/// CPU time and memory of a process and its descendants at one instant.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    pub at: Instant,
    /// utime + stime, clock ticks.
    pub cpu_ticks: u64,
    /// Sum of VmRSS, KiB.
    pub rss_kib: u64,
    /// Sum of VmHWM (peak RSS), KiB.
    pub hwm_kib: u64,
    pub processes: usize,
}

/// Fields of `/proc/PID/stat` after the command name: `(ppid, utime + stime + cutime +
/// cstime)`: the process's own CPU time and that of its children it has reaped, so that
/// short-lived helpers (Lunora's FFmpeg thumbnail decoders) that come and go between two
/// samples are counted too.
pub fn parse_stat(stat: &str) -> Option<(u32, u64)> {
    // The command name is in parentheses and may itself contain spaces or parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is the state (field 3); ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
    let ppid = f.get(1)?.parse().ok()?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let children: u64 = [13, 14]
        .iter()
        .filter_map(|&i| f.get(i)?.parse::<u64>().ok())
        .sum();
    Some((ppid, utime + stime + children))
}

/// A `kB` field of `/proc/PID/status`, e.g. `VmRSS`.
pub fn status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let v = l.strip_prefix(field)?.strip_prefix(':')?;
        v.split_whitespace().next()?.parse().ok()
    })
}

/// `pid` and every process below it.
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut parent: HashMap<u32, u32> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some((ppid, _)) = std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .as_deref()
                .and_then(parse_stat)
            {
                parent.insert(p, ppid);
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parent.iter().filter(|(_, &pp)| pp == p).map(|(&c, _)| c));
        i += 1;
    }
    tree
}

impl ProcSample {
    /// Samples `pids` (missing processes count as zero).
    pub fn take(pids: &[u32]) -> ProcSample {
        let at = Instant::now();
        let mut s = ProcSample {
            at,
            cpu_ticks: 0,
            rss_kib: 0,
            hwm_kib: 0,
            processes: 0,
        };
        for pid in pids {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
            let status = std::fs::read_to_string(format!("/proc/{pid}/status"));
            if let (Ok(stat), Ok(status)) = (stat, status) {
                if let Some((_, ticks)) = parse_stat(&stat) {
                    s.cpu_ticks += ticks;
                    s.processes += 1;
                }
                s.rss_kib += status_kib(&status, "VmRSS").unwrap_or(0);
                s.hwm_kib += status_kib(&status, "VmHWM").unwrap_or(0);
            }
        }
        s
    }

    /// CPU seconds per second (cores busy) between `self` and a later sample.
    pub fn cores_until(&self, later: &ProcSample, ticks_per_sec: u64) -> f64 {
        let wall = later.at.duration_since(self.at).as_secs_f64();
        if wall <= 0.0 || ticks_per_sec == 0 {
            return 0.0;
        }
        later.cpu_ticks.saturating_sub(self.cpu_ticks) as f64 / ticks_per_sec as f64 / wall
    }
}

/// Bytes the processes caused to be written to storage (`write_bytes` of `/proc/PID/io`;
/// missing processes count as zero). Page cache writes count when they are dirtied.
pub fn write_bytes(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/io")).ok())
        .filter_map(|io| io_field(&io, "write_bytes"))
        .sum()
}

/// A field of `/proc/PID/io`.
pub fn io_field(io: &str, field: &str) -> Option<u64> {
    io.lines().find_map(|l| {
        let v = l.strip_prefix(field)?.strip_prefix(':')?;
        v.trim().parse().ok()
    })
}

/// The bytes of every file under `dir` (0 if it does not exist).
pub fn tree_size(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                _ => {}
            }
        }
    }
    total
}

/// Clock ticks per second of `/proc/PID/stat` (`getconf CLK_TCK`, 100 on Linux).
pub fn clock_ticks_per_sec() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// The CPUs a process may run on (its affinity), from `Cpus_allowed_list`.
pub fn allowed_cpus(pid: &str) -> Option<Vec<usize>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?
        .trim()
        .to_string();
    parse_cpu_list(&list).filter(|v| !v.is_empty())
}

/// [`cpu_jiffies`] of the running system.
pub fn read_cpu_jiffies(cpus: &[usize]) -> (u64, u64) {
    std::fs::read_to_string("/proc/stat")
        .map(|s| cpu_jiffies(&s, cpus))
        .unwrap_or((0, 0))
}

/// The busy share of CPUs between two [`read_cpu_jiffies`] samples.
pub fn busy_share(a: (u64, u64), b: (u64, u64)) -> Option<f64> {
    let total = b.1.checked_sub(a.1)?;
    (total > 0).then(|| b.0.saturating_sub(a.0) as f64 / total as f64)
}

/// TCP segments received plus sent by the whole machine (`InSegs` + `OutSegs` of
/// `/proc/net/snmp`). On loopback every segment is counted once in each direction, whoever
/// sent it: between two samples, a measure of the kernel's per-segment work for both sides.
pub fn tcp_segments(snmp: &str) -> Option<u64> {
    let mut lines = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let names: Vec<&str> = lines.next()?.split_whitespace().collect();
    let values: Vec<&str> = lines.next()?.split_whitespace().collect();
    let field = |name: &str| -> Option<u64> {
        let i = names.iter().position(|n| *n == name)?;
        values.get(i)?.parse().ok()
    };
    Some(field("InSegs")? + field("OutSegs")?)
}

/// [`tcp_segments`] of the running system.
pub fn read_tcp_segments() -> Option<u64> {
    tcp_segments(&std::fs::read_to_string("/proc/net/snmp").ok()?)
}

/// `0-3,6` → 5.
pub fn count_cpu_list(list: &str) -> Option<usize> {
    parse_cpu_list(list).map(|v| v.len())
}

/// Busy and total jiffies of the given CPUs, from `/proc/stat` (busy: all but idle and
/// iowait). Sampled twice, the share of time those CPUs did anything, whoever ran there.
pub fn cpu_jiffies(stat: &str, cpus: &[usize]) -> (u64, u64) {
    let mut busy = 0;
    let mut total = 0;
    for line in stat.lines() {
        let Some(rest) = line.strip_prefix("cpu") else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let Some(id) = f.next().and_then(|n| n.parse::<usize>().ok()) else {
            continue;
        };
        if !cpus.contains(&id) {
            continue;
        }
        let v: Vec<u64> = f.take(8).filter_map(|x| x.parse().ok()).collect();
        let sum: u64 = v.iter().sum();
        let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
        busy += sum - idle.min(sum);
        total += sum;
    }
    (busy, total)
}

/// `0-3,6` → [0, 1, 2, 3, 6].
pub fn parse_cpu_list(list: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if b < a {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.trim().parse().ok()?),
        }
    }
    Some(out)
}

/// A latency histogram in microseconds, 1 µs to 10 min, 3 significant digits.
pub fn latency_histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 600_000_000, 3)?)
}

/// Percentiles in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Percentiles {
    pub samples: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            samples: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_with_a_strange_command_name() {
        let line = "4242 (nginx: worker (x) ) S 4241 4241 4241 0 -1 4194624 300 0 0 0 170 35 0 0 20 0 1 0 123 1000 200";
        assert_eq!(parse_stat(line), Some((4241, 205)));
        // Reaped children's time (cutime, cstime) counts.
        let line = "7 (lunora) S 1 7 7 0 -1 4194624 300 0 0 0 170 35 40 5 20 0 1 0 123 1000 200";
        assert_eq!(parse_stat(line), Some((1, 250)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn tcp_segments_of_snmp() {
        let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
            Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs\n\
            Tcp: 1 200 120000 -1 10 9 0 1 2 1000 1500 3\n\
            Udp: InDatagrams\nUdp: 5\n";
        assert_eq!(tcp_segments(snmp), Some(2500));
        // No Tcp lines, a header without values, or a value that is not a number.
        assert_eq!(tcp_segments("Ip: Forwarding\nIp: 1\n"), None);
        assert_eq!(tcp_segments("Tcp: InSegs OutSegs\n"), None);
        assert_eq!(tcp_segments("Tcp: InSegs OutSegs\nTcp: 1 x\n"), None);
    }

    #[test]
    fn status_fields_in_kib() {
        let s = "Name:\tlunora\nVmHWM:\t  20480 kB\nVmRSS:\t  10240 kB\n";
        assert_eq!(status_kib(s, "VmRSS"), Some(10240));
        assert_eq!(status_kib(s, "VmHWM"), Some(20480));
        assert_eq!(status_kib(s, "VmSwap"), None);
    }

    #[test]
    fn io_fields_and_tree_sizes() {
        let io = "rchar: 10\nwchar: 20\nwrite_bytes: 4096\ncancelled_write_bytes: 0\n";
        assert_eq!(io_field(io, "write_bytes"), Some(4096));
        assert_eq!(io_field(io, "read_bytes"), None);
        let dir = std::env::temp_dir().join(format!("lunora-bench-tree-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("x"), [0u8; 10]).unwrap();
        std::fs::write(dir.join("a/b/y"), [0u8; 5]).unwrap();
        assert_eq!(tree_size(&dir), 15);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(tree_size(&dir), 0);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list("0-1"), Some(2));
        assert_eq!(count_cpu_list("0-3,6"), Some(5));
        assert_eq!(count_cpu_list("x"), None);
    }

    #[test]
    fn busy_jiffies_of_chosen_cpus() {
        let stat = "cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 5 0 5 50 0 0 0 0 0 0\ncpu1 1 0 2 30 7 0 3 0 0 0\nintr 1 2\n";
        assert_eq!(cpu_jiffies(stat, &[0]), (10, 60));
        assert_eq!(cpu_jiffies(stat, &[1]), (6, 43));
        assert_eq!(cpu_jiffies(stat, &[0, 1]), (16, 103));
        assert_eq!(parse_cpu_list("1,3-4"), Some(vec![1, 3, 4]));
        assert_eq!(parse_cpu_list("4-3"), None);
    }

    #[test]
    fn cores_from_two_samples() {
        let t0 = Instant::now();
        let a = ProcSample {
            at: t0,
            cpu_ticks: 100,
            rss_kib: 0,
            hwm_kib: 0,
            processes: 1,
        };
        let b = ProcSample {
            at: t0 + std::time::Duration::from_secs(10),
            cpu_ticks: 600,
            ..a
        };
        assert!((a.cores_until(&b, 100) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn percentiles_in_ms() {
        let mut h = latency_histogram().unwrap();
        for us in 1..=1000u64 {
            h.record(us * 100).unwrap();
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.samples, 1000);
        assert!((p.p50_ms - 50.0).abs() < 0.1, "{p:?}");
        assert!((p.p99_ms - 99.0).abs() < 0.1, "{p:?}");
        assert!((p.max_ms - 100.0).abs() < 0.1, "{p:?}");
        assert_eq!(Percentiles::of(&latency_histogram().unwrap()).samples, 0);
    }
}
