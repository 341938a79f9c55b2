"""The mp3pipe operator command line (console entry point `mp3pipe`)."""
