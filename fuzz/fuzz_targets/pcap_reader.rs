#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kizuki_fuzz::entry::pcap_reader(data);
});
