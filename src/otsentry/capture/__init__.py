"""Capture input: pcap/pcapng files (pure Python or through libpcap) as a stream of raw frames."""

from otsentry.capture.pcapfile import CaptureError, RawFrame, read_capture, read_capture_libpcap

__all__ = ["CaptureError", "RawFrame", "read_capture", "read_capture_libpcap"]
