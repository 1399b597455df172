#!/usr/bin/env bash
# Records pcaps/smtp-*.pcap from real tools on the loopback interface, with the matching
# smtp-*.expected.json (file names, SHA-256 of the attachments as built here, and whether the
# mail_attachment detector must fire). Needs root (tcpdump -i lo, ports 25/587), swaks, zip,
# python3 with aiosmtpd (Debian: python3-aiosmtpd), openssl, tcpdump.
#
# Server: aiosmtpd on $SERVER:25 and $SERVER:587 (EHLO advertises PIPELINING; STARTTLS with a
# throw-away self-signed certificate). Clients: swaks, and Python's smtplib for the message
# sent in tiny TCP segments (TCP_MAXSEG). Attachments are built with zip / zip -e.
#
#   smtp-zip-exe     report.txt.exe inside a password ZIP (zip -e)         fires
#   smtp-pdf         a plain PDF                                           silent
#   smtp-zip-docs    password ZIP of documents only                        silent, recorded
#   smtp-rtlo        invoice_<U+202E>cod.exe (shows as invoice_exe.doc)    fires
#   smtp-mz-jpg      PE content named holiday.jpg                          fires
#   smtp-iso2022jp   請求書.pdf.exe, name in RFC 2047 ISO-2022-JP         fires
#   smtp-segments    password ZIP (報告書.zip, RFC 2231 UTF-8) in 24-byte segments   fires
#   smtp-pipelining  swaks --pipeline; nested ZIP: inner.zip/payload.scr   fires
#   smtp-starttls    STARTTLS then the message (not inspected, counted)    silent
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PATH:/usr/sbin:/sbin"

SERVER=${SERVER:-127.0.0.25}
OUT=${OUT:-pcaps}
PY=${PYTHON:-/usr/bin/python3}

die() { echo "capture-smtp: error: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (tcpdump on lo, ports 25 and 587)"
for t in swaks zip openssl tcpdump sha256sum; do
  command -v "$t" >/dev/null || die "$t not found (run: make deps)"
done
"$PY" -c 'import aiosmtpd' 2>/dev/null || die "$PY cannot import aiosmtpd (apt-get install python3-aiosmtpd)"

TMP=$(mktemp -d /tmp/kizuki-smtp.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

# --- the server ---------------------------------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mx.example.test" \
  -keyout "$TMP/key.pem" -out "$TMP/cert.pem" >/dev/null 2>&1
cat >"$TMP/server.py" <<'PY'
import asyncio, ssl, sys, time
from aiosmtpd.controller import Controller

class Sink:
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        # aiosmtpd reads commands line by line, so pipelined groups work; say so.
        return responses[:-1] + ["250-PIPELINING"] + responses[-1:]
    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 queued"

addr, cert, key = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
plain = Controller(Sink(), hostname=addr, port=25, data_size_limit=64 << 20)
sub = Controller(Sink(), hostname=addr, port=587, tls_context=ctx, require_starttls=False)
plain.start(); sub.start()
print("ready", flush=True)
try:
    while True:
        time.sleep(3600)
finally:
    plain.stop(); sub.stop()
PY
"$PY" "$TMP/server.py" "$SERVER" "$TMP/cert.pem" "$TMP/key.pem" >"$TMP/server.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 100); do grep -q ready "$TMP/server.log" && break; sleep 0.1; done
grep -q ready "$TMP/server.log" || { cat "$TMP/server.log" >&2; die "aiosmtpd did not start"; }

start_tcpdump() {
  local file=$1 log="$TMP/tcpdump.$RANDOM.log"
  rm -f "$file"
  tcpdump -i lo --immediate-mode -U -n -s 0 -Z root -w "$file" "host $SERVER and tcp" 2>"$log" &
  TCPDUMP_PID=$!
  PIDS+=("$TCPDUMP_PID")
  for _ in $(seq 100); do
    grep -q "listening on" "$log" && return 0
    sleep 0.05
  done
  die "tcpdump did not start: $(cat "$log")"
}
stop_tcpdump() {
  sleep 0.5
  kill -INT "$TCPDUMP_PID" 2>/dev/null || true
  wait "$TCPDUMP_PID" 2>/dev/null || true
}

# --- attachments, built with real tools ---------------------------------------------------
F=$TMP/files
mkdir -p "$F/z"
# A minimal PE image: MZ header, e_lfanew -> "PE\0\0" (enough for any magic check).
"$PY" - "$F/z/report.txt.exe" <<'PY'
import struct, sys
b = bytearray(512)
b[0:2] = b"MZ"; struct.pack_into("<I", b, 0x3c, 0x80); b[0x80:0x84] = b"PE\0\0"
msg = b"This program cannot be run in DOS mode.\r\r\n$"
b[0x100:0x100 + len(msg)] = msg
open(sys.argv[1], "wb").write(bytes(b))
PY
cp "$F/z/report.txt.exe" "$F/holiday.jpg"
cp "$F/z/report.txt.exe" "$F/payload.scr"
cp "$F/z/report.txt.exe" "$F/rtlo.bin"
cp "$F/z/report.txt.exe" "$F/seikyu.bin"
printf '%%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%%%EOF\n' >"$F/document.pdf"
printf 'Minutes of the meeting\n' >"$F/z/minutes.docx"
printf 'q1;q2\n1;2\n' >"$F/z/budget.xlsx"
(cd "$F/z" && zip -q -e -P infected ../report.zip report.txt.exe)
(cd "$F/z" && zip -q -e -P infected ../docs.zip minutes.docx budget.xlsx)
(cd "$F" && zip -q inner.zip payload.scr && zip -q nested.zip inner.zip document.pdf)
cp "$F/report.zip" "$F/houkoku.zip"

sha() { sha256sum "$1" | cut -d' ' -f1; }

swaks_send() { # port, then swaks arguments
  local port=$1; shift
  swaks --server "$SERVER" --port "$port" --helo client.example.test \
    --from alice@example.test --to bob@example.test "$@" >>"$TMP/swaks.log" 2>&1 \
    || { cat "$TMP/swaks.log" >&2; die "swaks failed"; }
}

# write_expected NAME JSON: the expectation file beside the capture.
write_expected() {
  printf '%s\n' "$2" >"$OUT/$1.expected.json"
}

capture() { # name, then the command that sends
  local name=$1; shift
  start_tcpdump "$OUT/$name.pcap"
  "$@"
  stop_tcpdump
  echo "capture-smtp: $OUT/$name.pcap ($(stat -c %s "$OUT/$name.pcap") bytes)"
}

note='"note": "recorded by scripts/capture-smtp.sh: aiosmtpd on 127.0.0.25, swaks / smtplib clients, attachments built with zip"'

capture smtp-zip-exe swaks_send 25 --header "Subject: Quarterly report" \
  --body "Password: infected" --attach-type application/zip --attach "$F/report.zip"
write_expected smtp-zip-exe "{ $note, \"messages\": [{\"mail_from\": \"alice@example.test\", \"rcpt_to\": [\"bob@example.test\"], \"subject\": \"Quarterly report\",
  \"attachments\": [{\"name\": \"report.zip\", \"sha256\": \"$(sha "$F/report.zip")\", \"encrypted\": true, \"entries\": [\"report.txt.exe\"]}]}],
  \"alerts\": [{\"attachment\": \"report.zip\", \"entry\": \"report.txt.exe\", \"encrypted\": true, \"reasons\": [\"executable_extension\", \"double_extension\"]}] }"

capture smtp-pdf swaks_send 25 --header "Subject: Invoice" --body "See attached." \
  --attach-type application/pdf --attach "$F/document.pdf"
write_expected smtp-pdf "{ $note, \"messages\": [{\"subject\": \"Invoice\",
  \"attachments\": [{\"name\": \"document.pdf\", \"sha256\": \"$(sha "$F/document.pdf")\"}]}], \"alerts\": [] }"

capture smtp-zip-docs swaks_send 25 --header "Subject: Meeting documents" --body "Password follows." \
  --attach-type application/zip --attach "$F/docs.zip"
write_expected smtp-zip-docs "{ $note, \"messages\": [{\"subject\": \"Meeting documents\",
  \"attachments\": [{\"name\": \"docs.zip\", \"sha256\": \"$(sha "$F/docs.zip")\", \"encrypted\": true, \"entries\": [\"minutes.docx\", \"budget.xlsx\"]}]}], \"alerts\": [] }"

RTLO_NAME=$(printf 'invoice_\xe2\x80\xaecod.exe')
capture smtp-rtlo swaks_send 25 --header "Subject: Invoice" --body "Invoice attached." \
  --attach-name "$RTLO_NAME" --attach "$F/rtlo.bin"
write_expected smtp-rtlo "{ $note, \"messages\": [{\"attachments\": [{\"name\": \"$RTLO_NAME\", \"sha256\": \"$(sha "$F/rtlo.bin")\"}]}],
  \"alerts\": [{\"attachment\": \"$RTLO_NAME\", \"reasons\": [\"executable_extension\", \"rtlo\", \"executable_content\"]}] }"

capture smtp-mz-jpg swaks_send 25 --header "Subject: Holiday pictures" --body "Enjoy." \
  --attach-type image/jpeg --attach "$F/holiday.jpg"
write_expected smtp-mz-jpg "{ $note, \"messages\": [{\"attachments\": [{\"name\": \"holiday.jpg\", \"sha256\": \"$(sha "$F/holiday.jpg")\"}]}],
  \"alerts\": [{\"attachment\": \"holiday.jpg\", \"reasons\": [\"executable_content\"]}] }"

# RFC 2047 in ISO-2022-JP, made by Python's email library (what Japanese MUAs send).
JP_WORD=$("$PY" -c 'from email.header import Header; print(Header("請求書.pdf.exe", "iso-2022-jp").encode())')
JP_SUBJ=$("$PY" -c 'from email.header import Header; print(Header("請求書の送付", "iso-2022-jp").encode())')
capture smtp-iso2022jp swaks_send 25 --header "Subject: $JP_SUBJ" --body "Please find the invoice." \
  --attach-name "$JP_WORD" --attach "$F/seikyu.bin"
write_expected smtp-iso2022jp "{ $note, \"encoded_name\": \"$JP_WORD\", \"messages\": [{\"subject\": \"請求書の送付\", \"attachments\": [{\"name\": \"請求書.pdf.exe\", \"sha256\": \"$(sha "$F/seikyu.bin")\"}]}],
  \"alerts\": [{\"attachment\": \"請求書.pdf.exe\", \"reasons\": [\"executable_extension\", \"double_extension\", \"executable_content\"]}] }"

# smtplib writing 24 bytes at a time: the message crosses the wire in many small segments.
send_segments() {
  "$PY" - "$SERVER" "$F/houkoku.zip" <<'PY'
import smtplib, socket, sys, time
from email.message import EmailMessage
server, path = sys.argv[1], sys.argv[2]
class Dribble(socket.socket):
    """Writes in 24-byte pieces, each pushed out at once (TCP_NODELAY): one segment each."""
    def sendall(self, data, *a):
        data = memoryview(bytes(data))
        for i in range(0, len(data), 24):
            super().sendall(data[i:i + 24])
            time.sleep(0.002)
class Small(smtplib.SMTP):
    def _get_socket(self, host, port, timeout):
        s = Dribble(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 88)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(30)
        s.connect((host, port))
        return s
m = EmailMessage()
m["From"] = "carol@example.test"; m["To"] = "dave@example.test"; m["Subject"] = "報告書"
m.set_content("パスワードは別途お送りします。")
m.add_attachment(open(path, "rb").read(), maintype="application", subtype="zip", filename="報告書.zip")
with Small(server, 25, local_hostname="client.example.test") as c:
    c.send_message(m)
PY
}
capture smtp-segments send_segments
write_expected smtp-segments "{ $note, \"min_client_segments\": 40, \"messages\": [{\"mail_from\": \"carol@example.test\", \"subject\": \"報告書\",
  \"attachments\": [{\"name\": \"報告書.zip\", \"sha256\": \"$(sha "$F/houkoku.zip")\", \"encrypted\": true, \"entries\": [\"report.txt.exe\"]}]}],
  \"alerts\": [{\"attachment\": \"報告書.zip\", \"entry\": \"report.txt.exe\", \"encrypted\": true, \"reasons\": [\"executable_extension\", \"double_extension\"]}] }"

capture smtp-pipelining swaks_send 25 --pipeline --to bob@example.test,carol@example.test \
  --header "Subject: Nested" --body "Archive attached." --attach-type application/zip --attach "$F/nested.zip"
write_expected smtp-pipelining "{ $note, \"messages\": [{\"pipelined\": true, \"rcpt_to\": [\"bob@example.test\", \"carol@example.test\"],
  \"attachments\": [{\"name\": \"nested.zip\", \"sha256\": \"$(sha "$F/nested.zip")\", \"encrypted\": false, \"entries\": [\"inner.zip\", \"payload.scr\", \"document.pdf\"]}]}],
  \"alerts\": [{\"attachment\": \"nested.zip\", \"entry\": \"payload.scr\", \"entry_container\": \"inner.zip\", \"encrypted\": false, \"reasons\": [\"executable_extension\", \"executable_content\"]}] }"

capture smtp-starttls swaks_send 587 -tls --header "Subject: Secret" --body "Over TLS." \
  --attach-type application/zip --attach "$F/report.zip"
write_expected smtp-starttls "{ $note, \"messages\": [], \"alerts\": [], \"starttls_sessions\": 1 }"

echo "capture-smtp: done"
