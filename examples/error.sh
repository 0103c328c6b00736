# Stops at the first failing command: the editor marks line 6.
set -euo pipefail

echo "counting files"
count=$(ls | wc -l)
no_such_command --count "$count"
echo "never printed"
