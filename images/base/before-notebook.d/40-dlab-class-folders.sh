# dlab's start-up hook in every image (any of them may be a class's: DLAB_IMAGE): on the class
# server, the class's folders are mounted outside the home (/srv/course; /srv/handin, the student's own, or
# /srv/handins, an instructor's view of them all; /srv/grading, the instructors' nbgrader course),
# so that a full home still starts; here they appear in the home as links, ~/course, ~/handin,
# ~/handins, ~/grading, made as the notebook user
# (dlab-as-user). A name the student already uses for something else is left alone (the folder is
# still at /srv/...). Without the class server: nothing.
# shellcheck shell=bash
dlab_class_folder_links=''
for folder in course handin handins grading; do
  if [ -d "/srv/$folder" ] && [ ! -e "$HOME/$folder" ] && [ ! -L "$HOME/$folder" ]; then
    dlab_class_folder_links+="ln -s /srv/$folder $HOME/$folder || echo 'WARNING: dlab: no link ~/$folder to /srv/$folder (is the home full?)' >&2; "
  fi
done
if [ -n "$dlab_class_folder_links" ]; then
  dlab-as-user bash -c "$dlab_class_folder_links"
fi
unset dlab_class_folder_links folder
