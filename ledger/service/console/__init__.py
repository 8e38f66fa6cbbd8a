"""The web console (issue #15): server-rendered pages under /ui for QA leads, approvers and auditors."""
