# %% Who and where are we?
echo "Hello from $(uname -s) with bash ${BASH_VERSION%%(*}"
echo "working in $PWD"

# %% A loop and an array
fruits=(apple banana cherry)
for i in "${!fruits[@]}"; do
  echo "$i: ${fruits[$i]}"
done
