//! CPU time and memory of processes, from /proc: how much work each request costs the server
//! and the database server, and how big the server grows.

use std::path::Path;

/// User + system CPU time of a process, in microseconds.
pub fn cpu_micros(pid: u32, ticks_per_sec: u64) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; the fields after the closing parenthesis do not.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * 1_000_000 / ticks_per_sec)
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// User + system CPU time of several processes together (None unless every one was read).
pub fn cpu_micros_sum(pids: &[u32], ticks_per_sec: u64) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|p| cpu_micros(*p, ticks_per_sec)).sum()
}

/// The largest resident memory among `pids`, in KiB.
pub fn rss_kib_max(pids: &[u32]) -> Option<u64> {
    pids.iter().filter_map(|p| rss_kib(*p)).max()
}

/// The pids of every process whose command name is one of `names`.
pub fn find_processes(names: &[&str]) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(comm) =
            std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("comm"))
        {
            if names.contains(&comm.trim()) {
                found.push(pid);
            }
        }
    }
    found
}

pub fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}
