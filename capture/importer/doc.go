// Package importer reads traffic other tools recorded into thrive's
// exchanges, so that a session recorded in a browser can be replayed as if
// thrive's proxy had seen it: ReadHAR reads the HTTP Archive (HAR 1.2)
// files that Chrome's and Firefox's DevTools and Playwright write, and
// GorReader the files GoReplay writes (--output-file).
//
// An importer only reads: it returns each exchange with when it began and
// what tied it to a client (Seen), and leaves grouping them into sessions
// to the capture's sessionizer, as for traffic the proxy recorded.
package importer
