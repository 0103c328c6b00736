-- :DaytonaRun a b passes the arguments (remembered for the buffer), and a program that asks for input gets the answer
-- typed into vim.ui.input (prompted with the program's prompt); a dismissed prompt closes its stdin (EOF).
local H = dofile(vim.env.DAYTONA_LSP_TEST_DIR .. '/harness.lua')
H.setup_runtime()

H.run('plugin_input', function()
  H.setup_plugin()
  local prompts = {}
  local answers = { 'Ann' }
  vim.ui.input = function(opts, on_confirm) -- the user types the next answer (nil: <Esc>)
    table.insert(prompts, opts.prompt)
    on_confirm(table.remove(answers, 1))
  end
  H.open('ask.py', "import sys\nname = input('name? ')\nprint('args', sys.argv[1:], 'hello', name)\n")

  local finished = H.expect_event('DaytonaRunFinished')
  vim.cmd('DaytonaRun a b')
  local data = finished(30000, 'the run with arguments to finish')
  H.eq(0, data.exit_code, 'exit code')
  H.eq('name? ', prompts[1], 'vim.ui.input was prompted with the program prompt')
  local text = H.output_text()
  H.check(H.contains(text, "args ['a', 'b'] hello Ann"), 'arguments and the answer reached the program: ' .. text)
  H.check(H.contains(text, 'name? Ann'), 'the typed line is echoed in the output')
  H.eq({ 'a', 'b' }, vim.b.daytona_args, 'the arguments are remembered for the buffer')

  -- :DaytonaRun again: the same arguments; <Esc> at the prompt: the program reads EOF
  finished = H.expect_event('DaytonaRunFinished')
  vim.cmd('DaytonaRun')
  data = finished(30000, 'the second run to finish')
  H.eq(1, data.exit_code, 'exit code after EOF')
  H.eq(2, #prompts, 'asked once more')
  H.check(H.contains(H.output_text(), 'EOFError'), 'the program read EOF')
end)
