//! `mail_attachment` (J-CRAT recommendation 4): executables disguised as documents in
//! plaintext SMTP, password-protected ZIPs included.
//!
//! The sensor hands over each message ([`Event::Mail`]) with its attachments: decoded names,
//! magic bytes, SHA-256, and the entries of ZIP archives listed from their headers (nested
//! archives one level deep; encrypted entries keep readable names). This detector judges the
//! names and types:
//! - `executable_extension`: the name ends in an executable extension (exe, scr, js, lnk...);
//! - `double_extension`: ... right after a decoy extension (`report.txt.exe`, `a.pdf   .exe`);
//! - `rtlo`: the name holds a bidirectional override (U+202E "right-to-left override" turns
//!   `photo\u{202E}gpj.exe` into `photoexe.jpg` on screen);
//! - `executable_content`: PE (MZ) or ELF content whatever the name says;
//! - `disk_image`: iso / img / vhd containers (mail gateways often do not look inside).
//!
//! One alert per offending attachment or archive entry; the same file from the same sender to
//! the same recipients is one ongoing alert (updated after the cooldown).

use super::{add_vlan, check_common, new_alert, AllowConfig, Allowlist, Dedupe};
use crate::{Alert, Analyzer, ArchiveEntry, Event, MailAttachment, MailMessage, Severity, TsNanos};
use serde::Deserialize;
use serde_json::json;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MailAttachmentConfig {
    pub enabled: bool,
    /// Extensions that run when opened (lower case, no dot).
    pub executable_extensions: Vec<String>,
    /// Disk-image containers (`disk_image` reason).
    pub container_extensions: Vec<String>,
    /// Decoy extensions: one of these right before an executable one is a double extension.
    pub decoy_extensions: Vec<String>,
    /// Alerts per message at most (the rest are counted in `alerts_capped`).
    pub max_alerts_per_message: usize,
    pub cooldown_s: f64,
    pub max_alert_keys: usize,
    pub allow: AllowConfig,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Default for MailAttachmentConfig {
    fn default() -> Self {
        MailAttachmentConfig {
            enabled: true,
            executable_extensions: strings(&[
                "exe",
                "scr",
                "com",
                "pif",
                "bat",
                "cmd",
                "js",
                "jse",
                "vbs",
                "vbe",
                "wsf",
                "wsh",
                "hta",
                "lnk",
                "ps1",
                "psm1",
                "msi",
                "msp",
                "cpl",
                "dll",
                "jar",
                "reg",
                "chm",
                "application",
                "gadget",
                "msc",
                "scf",
                "url",
                "inf",
                "sct",
            ]),
            container_extensions: strings(&["iso", "img", "vhd", "vhdx"]),
            decoy_extensions: strings(&[
                "txt", "doc", "docx", "docm", "xls", "xlsx", "xlsm", "ppt", "pptx", "pdf", "rtf",
                "jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "htm", "html", "csv", "zip",
                "hwp", "jtd", "mp3", "mp4", "avi", "wav",
            ]),
            max_alerts_per_message: 16,
            cooldown_s: 3_600.0,
            max_alert_keys: 100_000,
            allow: AllowConfig::default(),
        }
    }
}

impl MailAttachmentConfig {
    pub fn validate(&self) -> Result<(), String> {
        check_common(
            "detectors.mail_attachment",
            self.cooldown_s,
            &[
                ("max_alert_keys", self.max_alert_keys),
                ("max_alerts_per_message", self.max_alerts_per_message),
            ],
        )?;
        self.allow.compile("detectors.mail_attachment").map(|_| ())
    }
}

/// Why a name or content is suspicious (EVE `kizuki.reasons`, metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    ExecutableExtension,
    DoubleExtension,
    Rtlo,
    ExecutableContent,
    DiskImage,
}

impl Reason {
    pub const ALL: [Reason; 5] = [
        Reason::ExecutableExtension,
        Reason::DoubleExtension,
        Reason::Rtlo,
        Reason::ExecutableContent,
        Reason::DiskImage,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ExecutableExtension => "executable_extension",
            Reason::DoubleExtension => "double_extension",
            Reason::Rtlo => "rtlo",
            Reason::ExecutableContent => "executable_content",
            Reason::DiskImage => "disk_image",
        }
    }
}

/// Bidirectional controls that reorder how a name is displayed.
fn has_bidi_override(name: &str) -> bool {
    name.chars()
        .any(|c| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
}

/// The judge, shared with tests and the sensor's EVE record.
pub struct Classifier {
    exec: Vec<String>,
    containers: Vec<String>,
    decoys: Vec<String>,
}

impl Classifier {
    pub fn new(cfg: &MailAttachmentConfig) -> Self {
        let norm = |v: &[String]| {
            v.iter()
                .map(|s| s.trim().trim_start_matches('.').to_ascii_lowercase())
                .collect()
        };
        Classifier {
            exec: norm(&cfg.executable_extensions),
            containers: norm(&cfg.container_extensions),
            decoys: norm(&cfg.decoy_extensions),
        }
    }

    /// Reasons for a file name and its magic type (sorted, no duplicates).
    pub fn reasons(&self, name: Option<&str>, magic: Option<&str>) -> Vec<Reason> {
        let mut r = Vec::new();
        if matches!(magic, Some("pe" | "elf")) {
            r.push(Reason::ExecutableContent);
        }
        if let Some(name) = name {
            if has_bidi_override(name) {
                r.push(Reason::Rtlo);
            }
            // What the shell sees: the base name, bidi controls removed, trailing dots and
            // spaces trimmed (Windows ignores them).
            let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
            let clean: String = base
                .chars()
                .filter(|c| !matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
                .collect::<String>()
                .trim_end_matches(['.', ' '])
                .to_lowercase();
            let mut parts = clean.rsplit('.');
            let last = parts.next().unwrap_or("");
            let has_ext = clean.contains('.');
            if has_ext && self.exec.iter().any(|e| e == last) {
                r.push(Reason::ExecutableExtension);
                if let Some(prev) = parts.next() {
                    // `a.pdf.exe`, or padding spaces before the real extension.
                    let padded = prev.ends_with("   ");
                    let prev = prev.trim_end();
                    if padded
                        || (clean.matches('.').count() >= 2
                            && self.decoys.iter().any(|d| d == prev))
                    {
                        r.push(Reason::DoubleExtension);
                    }
                }
            }
            if has_ext && self.containers.iter().any(|e| e == last) {
                r.push(Reason::DiskImage);
            }
        }
        r.sort();
        r.dedup();
        r
    }
}

pub struct MailAttachmentDetector {
    cfg: MailAttachmentConfig,
    allow: Allowlist,
    classify: Classifier,
    dedupe: Dedupe,
    pub messages: u64,
    pub alerts: u64,
    pub alerts_capped: u64,
}

impl MailAttachmentDetector {
    pub fn new(cfg: MailAttachmentConfig) -> Result<Self, String> {
        cfg.validate()?;
        Ok(MailAttachmentDetector {
            allow: cfg.allow.compile("detectors.mail_attachment")?,
            classify: Classifier::new(&cfg),
            dedupe: Dedupe::new(cfg.cooldown_s, cfg.max_alert_keys),
            cfg,
            messages: 0,
            alerts: 0,
            alerts_capped: 0,
        })
    }

    fn on_mail(&mut self, m: &MailMessage, out: &mut Vec<Alert>) {
        self.messages += 1;
        if self.allow.any(Some(m.src_ip), Some(m.dest_ip), None) {
            return;
        }
        let mut emitted = 0usize;
        for att in &m.attachments {
            let mut hits: Vec<(Option<&ArchiveEntry>, Vec<Reason>)> = Vec::new();
            let r = self
                .classify
                .reasons(att.name.as_deref(), att.magic.as_deref());
            if !r.is_empty() {
                hits.push((None, r));
            }
            for e in &att.entries {
                let r = self.classify.reasons(Some(&e.name), e.magic.as_deref());
                if !r.is_empty() {
                    hits.push((Some(e), r));
                }
            }
            for (entry, reasons) in hits {
                if emitted >= self.cfg.max_alerts_per_message {
                    self.alerts_capped += 1;
                    continue;
                }
                if let Some(a) = self.alert(m, att, entry, &reasons) {
                    emitted += 1;
                    out.push(a);
                }
            }
        }
    }

    fn alert(
        &mut self,
        m: &MailMessage,
        att: &MailAttachment,
        entry: Option<&ArchiveEntry>,
        reasons: &[Reason],
    ) -> Option<Alert> {
        let att_name = att.name.as_deref().unwrap_or("");
        let entry_name = entry.map(|e| match &e.container {
            Some(c) => format!("{c}/{}", e.name),
            None => e.name.clone(),
        });
        let key = format!(
            "mail_attachment|{}|{}|{}|{}|{}",
            att.sha256,
            att_name,
            entry_name.as_deref().unwrap_or(""),
            m.mail_from.as_deref().unwrap_or(""),
            m.rcpt_to.join(",")
        );
        let hit = self.dedupe.hit(&key, m.ts)?;
        let encrypted = entry.map_or(att.encrypted, |e| e.encrypted);
        let strong = reasons.iter().any(|r| {
            matches!(
                r,
                Reason::DoubleExtension | Reason::Rtlo | Reason::ExecutableContent
            )
        });
        let severity = if strong || encrypted {
            Severity::High
        } else {
            Severity::Medium
        };
        let what = match &entry_name {
            Some(e) => format!("{e:?} inside {att_name:?}"),
            None => format!("{att_name:?}"),
        };
        let why: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
        let mut a = new_alert(
            m.ts,
            "mail_attachment",
            severity,
            format!(
                "KIZUKI suspicious mail attachment {what} ({}{})",
                why.join(", "),
                if encrypted { ", encrypted" } else { "" }
            ),
            key,
            hit,
        );
        a.src_ip = Some(m.src_ip);
        a.src_port = Some(m.src_port);
        a.dest_ip = Some(m.dest_ip);
        a.dest_port = Some(m.dest_port);
        a.proto = Some(crate::ipproto::TCP);
        let ev = &mut a.evidence;
        ev.insert("flow_id".into(), m.flow_id.into());
        ev.insert("from".into(), json!(m.mail_from));
        ev.insert("to".into(), json!(m.rcpt_to));
        ev.insert("subject".into(), json!(m.subject));
        ev.insert("attachment".into(), json!(att.name));
        ev.insert("content_type".into(), json!(att.content_type));
        ev.insert("size".into(), att.size.into());
        ev.insert("sha256".into(), json!(att.sha256));
        if let Some(e) = entry {
            ev.insert("entry".into(), json!(e.name));
            if let Some(c) = &e.container {
                ev.insert("entry_container".into(), json!(c));
            }
            ev.insert("entry_size".into(), e.size.into());
        }
        ev.insert("reasons".into(), json!(why));
        ev.insert("encrypted".into(), encrypted.into());
        ev.insert("trans_depth".into(), m.trans_depth.into());
        add_vlan(&mut a, m.vlan);
        self.alerts += 1;
        Some(a)
    }
}

impl Analyzer for MailAttachmentDetector {
    fn name(&self) -> &'static str {
        "mail_attachment"
    }
    fn on_event(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        if let Event::Mail(m) = ev {
            self.on_mail(m, out);
        }
    }
    fn on_tick(&mut self, _now: TsNanos, _out: &mut Vec<Alert>) {}
    fn snapshot(&self) -> serde_json::Value {
        json!({
            "messages": self.messages,
            "alerts": self.alerts,
            "alerts_capped": self.alerts_capped,
            "suppressed": self.dedupe.suppressed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::testutil::{ip, ts};
    use crate::Vlans;

    fn classify(name: &str, magic: Option<&str>) -> Vec<&'static str> {
        Classifier::new(&MailAttachmentConfig::default())
            .reasons(Some(name), magic)
            .into_iter()
            .map(Reason::as_str)
            .collect()
    }

    #[test]
    fn names() {
        assert_eq!(
            classify("report.txt.exe", None),
            ["executable_extension", "double_extension"]
        );
        assert_eq!(classify("Report.PDF.Scr", None).len(), 2);
        assert_eq!(classify("setup.exe", None), ["executable_extension"]);
        assert_eq!(
            classify("invoice.pdf          .exe", None),
            ["executable_extension", "double_extension"]
        );
        assert_eq!(
            classify("photo\u{202E}gpj.exe", None),
            ["executable_extension", "rtlo"]
        );
        assert_eq!(classify("holiday.jpg", Some("pe")), ["executable_content"]);
        assert_eq!(classify("disk.iso", None), ["disk_image"]);
        assert!(classify("report.pdf", Some("pdf")).is_empty());
        assert!(classify("exe", None).is_empty());
        assert!(classify("a.exe.txt", None).is_empty());
        assert_eq!(classify("dir/a.exe. . ", None), ["executable_extension"]);
    }

    fn message(atts: Vec<MailAttachment>) -> MailMessage {
        MailMessage {
            ts: ts(100),
            flow_id: 7,
            src_ip: ip("10.0.0.5"),
            src_port: 40000,
            dest_ip: ip("10.0.0.25"),
            dest_port: 25,
            vlan: Vlans::default(),
            community_id: Default::default(),
            helo: None,
            mail_from: Some("a@example.org".into()),
            rcpt_to: vec!["b@example.org".into()],
            header_from: None,
            header_to: None,
            subject: Some("hello".into()),
            message_id: None,
            trans_depth: 1,
            transfer: "DATA",
            pipelined: false,
            size: 100,
            truncated: false,
            attachments: atts,
        }
    }

    fn att(name: &str, entries: Vec<ArchiveEntry>) -> MailAttachment {
        MailAttachment {
            name: Some(name.into()),
            content_type: "application/zip".into(),
            size: 10,
            sha256: "ab".into(),
            magic: Some("zip".into()),
            encrypted: entries.iter().any(|e| e.encrypted),
            entries,
            entries_truncated: false,
            truncated: false,
        }
    }

    fn entry(name: &str, encrypted: bool) -> ArchiveEntry {
        ArchiveEntry {
            name: name.into(),
            size: 5,
            encrypted,
            container: None,
            magic: None,
        }
    }

    #[test]
    fn encrypted_zip_entry_fires_documents_do_not() {
        let mut d = MailAttachmentDetector::new(MailAttachmentConfig::default()).unwrap();
        let mut out = Vec::new();
        d.on_event(
            &Event::Mail(Box::new(message(vec![att(
                "docs.zip",
                vec![entry("a.docx", true), entry("b.pdf", true)],
            )]))),
            &mut out,
        );
        assert!(out.is_empty());
        d.on_event(
            &Event::Mail(Box::new(message(vec![att(
                "docs.zip",
                vec![entry("report.txt.exe", true)],
            )]))),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        let a = &out[0];
        assert_eq!(a.severity, Severity::High);
        assert_eq!(a.evidence["entry"], "report.txt.exe");
        assert_eq!(a.evidence["encrypted"], true);
        assert_eq!(a.evidence["from"], "a@example.org");
        assert_eq!(
            a.evidence["reasons"],
            json!(["executable_extension", "double_extension"])
        );
        // Same file, same envelope, within the cooldown: suppressed.
        d.on_event(
            &Event::Mail(Box::new(message(vec![att(
                "docs.zip",
                vec![entry("report.txt.exe", true)],
            )]))),
            &mut out,
        );
        assert_eq!(out.len(), 1);
    }
}
