"""mp3pipe shared code: everything the thin Azure Functions entry points call into."""
