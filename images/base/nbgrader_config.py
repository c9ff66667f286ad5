# nbgrader on the class server (docs/assignments.md). The class server names the course and each
# server's role (hub/dlab_hub/assignments.py: DLAB_COURSE, DLAB_ROLE); without it (make lab, docker run)
# nbgrader keeps its own defaults.
#
# Every server runs as uid 1000, so nbgrader's file modes tell no one apart: the mounts do. The
# exchange (released assignments, feedback) is read-only to students, their submissions go to their
# own hand-in folder, and only instructors hold the course's grading folder (~/grading). groupshared
# turns off nbgrader's ownership checks, which every mount made by root would fail.
import os

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file
if os.environ.get("DLAB_COURSE"):
    c.CourseDirectory.course_id = os.environ["DLAB_COURSE"]
    c.CourseDirectory.groupshared = True
    c.Exchange.root = "/srv/nbgrader/exchange"
    if os.environ.get("DLAB_ROLE") == "instructor":
        from dlab_nbgrader import instructor_config
        instructor_config(c)
