# Elixir/OTP's side of the comparison (benchmarks/compare/compare.py), the idiomatic way: a
# GenServer, called and cast to from another process; upgrades by :sys.suspend, :sys.change_code
# and :sys.resume; modules loaded with :code.load_binary and purged with :code.purge; children
# of a DynamicSupervisor started and terminated. One workload a run, its figures as
# `metric NAME VALUE UNIT` lines.
#
#     elixir compare.exs call|cast|upgrade_pause[_answered|_calling]|upgrade_100k|upgrade_1m|load_purge|idle_memory|churn [--quick]

defmodule Compare.Counter do
  use GenServer
  def start_link(total), do: GenServer.start_link(__MODULE__, total)
  def init(total), do: {:ok, total}
  def handle_call(:get, _from, total), do: {:reply, total, total}
  def handle_cast({:add, n}, total), do: {:noreply, total + n}
end

# The Anemone servers at v3: their code_change makes v3's state from v2's (accounts gain :active).
defmodule Compare.AccountManager do
  use GenServer
  def init(accounts), do: {:ok, accounts}
  def handle_call(:scores, _from, accounts), do: {:reply, map_size(accounts), accounts}

  def code_change(_old_vsn, accounts, _extra),
    do: {:ok, Map.new(accounts, fn {name, account} -> {name, Map.put(account, :active, true)} end)}
end

defmodule Compare.Inspector do
  use GenServer
  def init(account), do: {:ok, account}
  def handle_call(:show, _from, account), do: {:reply, inspect(account), account}
  def code_change(_old_vsn, account, _extra), do: {:ok, Map.put(account, :active, true)}
end

# One server holding many accounts, a list as hotswap's holds a vector.
defmodule Compare.Ledger do
  use GenServer
  def init(accounts), do: {:ok, accounts}
  def handle_call(:size, _from, accounts), do: {:reply, length(accounts), accounts}
  def code_change(_old_vsn, accounts, _extra), do: {:ok, Enum.map(accounts, &Map.put(&1, :active, true))}
end

defmodule Compare do
  def metric(name, value, unit), do: IO.puts("metric #{name} #{Float.round(value / 1, 6)} #{unit}")

  def timed_us(fun) do
    start = :erlang.monotonic_time(:nanosecond)
    fun.()
    (:erlang.monotonic_time(:nanosecond) - start) / 1000
  end

  def percentile(samples, p) do
    sorted = Enum.sort(samples)
    Enum.at(sorted, trunc(p * (length(sorted) - 1)))
  end

  def latencies(samples) do
    metric("p50", percentile(samples, 0.50), "us")
    metric("p99", percentile(samples, 0.99), "us")
  end

  def run("call", quick) do
    {:ok, counter} = GenServer.start(Compare.Counter, 0)
    latencies(for _ <- 1..if(quick, do: 100, else: 20_000), do: timed_us(fn -> GenServer.call(counter, :get) end))
  end

  def run("cast", quick) do
    {:ok, counter} = GenServer.start(Compare.Counter, 0)
    count = if quick, do: 1_000, else: 2_000_000

    took =
      timed_us(fn ->
        for _ <- 1..count, do: GenServer.cast(counter, {:add, 1})
        GenServer.call(counter, :get, :infinity)
      end)

    metric("throughput", count / took, "M msg/s")
  end

  def run("upgrade_pause", quick), do: upgrade_pause(:idle, quick)
  def run("upgrade_pause_answered", quick), do: upgrade_pause(:answered, quick)
  def run("upgrade_pause_calling", quick), do: upgrade_pause(:calling, quick)

  def run("upgrade_100k", quick), do: upgrade_accounts(if(quick, do: 1_000, else: 100_000), quick)
  def run("upgrade_1m", quick), do: upgrade_accounts(if(quick, do: 1_000, else: 1_000_000), quick)

  def run("load_purge", quick) do
    [{module, binary}] = Code.compile_string("defmodule Compare.Small do\n def get(total), do: total\nend")
    :code.delete(module)
    :code.purge(module)

    {loads, purges} =
      for _ <- 1..if(quick, do: 3, else: 300) do
        load = timed_us(fn -> {:module, ^module} = :code.load_binary(module, ~c"compare_small.beam", binary) end)
        :code.delete(module)
        {load, timed_us(fn -> :code.purge(module) end)}
      end
      |> Enum.unzip()

    metric("load", percentile(loads, 0.50), "us")
    metric("purge", percentile(purges, 0.50), "us")
  end

  def run("idle_memory", quick) do
    count = if quick, do: 1_000, else: 100_000
    :erlang.garbage_collect()
    before = :erlang.memory(:processes)
    servers = for _ <- 1..count, do: elem(GenServer.start(Compare.Counter, 0), 1)
    metric("bytes", (:erlang.memory(:processes) - before) / count, "B")
    Enum.each(servers, &GenServer.stop/1)
  end

  def run("churn", quick) do
    {:ok, supervisor} = DynamicSupervisor.start_link(strategy: :one_for_one)

    samples =
      for _ <- 1..if(quick, do: 100, else: 20_000) do
        timed_us(fn ->
          {:ok, child} = DynamicSupervisor.start_child(supervisor, {Compare.Counter, 0})
          :ok = DynamicSupervisor.terminate_child(supervisor, child)
        end)
      end

    latencies(samples)
  end

  def run(workload, _quick) do
    IO.puts(:stderr, "usage: compare.exs call|cast|upgrade_pause[_answered|_calling]|upgrade_100k|upgrade_1m|load_purge|idle_memory|churn [--quick] (not #{workload})")
    System.halt(64)
  end

  # The two servers met idle (started, never called), each having just answered a call, or with a
  # client process calling the AccountManager throughout: the pause, and that client's slowest
  # call during it.
  defp upgrade_pause(met, quick) do
    account = %{name: nil, score: 0, stage: 0}

    rounds =
      for _ <- 1..if(quick, do: 5, else: 500) do
        accounts = %{"alice" => %{account | name: "Alice"}, "bob" => %{account | name: "Bob", stage: 1}}
        {:ok, manager} = GenServer.start(Compare.AccountManager, accounts)
        {:ok, inspector} = GenServer.start(Compare.Inspector, account)
        client = if met == :calling, do: calling_client(manager)

        if met == :answered do
          GenServer.call(manager, :scores)
          GenServer.call(inspector, :show)
        end

        took =
          timed_us(fn ->
            :ok = :sys.suspend(manager)
            :ok = :sys.suspend(inspector)
            :ok = :sys.change_code(manager, Compare.AccountManager, "2", nil)
            :ok = :sys.change_code(inspector, Compare.Inspector, "2", nil)
            :ok = :sys.resume(inspector)
            :ok = :sys.resume(manager)
          end)

        worst = if client, do: stop_client(client)
        GenServer.stop(manager)
        GenServer.stop(inspector)
        {took, worst}
      end

    latencies(Enum.map(rounds, &elem(&1, 0)))

    if met == :calling do
      worst = Enum.map(rounds, &elem(&1, 1))
      metric("worst_call_p50", percentile(worst, 0.50), "us")
      metric("worst_call_p99", percentile(worst, 0.99), "us")
    end
  end

  # A process calling `manager` in a loop; its slowest call (ns) in atomics slot 1, its calls in
  # 2; it stops when slot 3 is set. Returned once it has made a call.
  defp calling_client(manager) do
    counts = :atomics.new(3, signed: false)
    pid = spawn(fn -> client_loop(manager, counts) end)
    calls_reach(counts, 1)
    {pid, counts}
  end

  defp client_loop(manager, counts) do
    if :atomics.get(counts, 3) == 0 do
      start = :erlang.monotonic_time(:nanosecond)
      GenServer.call(manager, :scores)
      raise_worst(counts, :erlang.monotonic_time(:nanosecond) - start)
      :atomics.add(counts, 2, 1)
      client_loop(manager, counts)
    end
  end

  defp raise_worst(counts, took) do
    worst = :atomics.get(counts, 1)
    if took > worst and :atomics.compare_exchange(counts, 1, worst, took) != :ok, do: raise_worst(counts, took)
  end

  defp calls_reach(counts, n) do
    if :atomics.get(counts, 2) < n do
      :erlang.yield()
      calls_reach(counts, n)
    end
  end

  # The slowest call since the client started, once the call in flight has returned (us).
  defp stop_client({pid, counts}) do
    calls_reach(counts, :atomics.get(counts, 2) + 1)
    worst = :atomics.get(counts, 1) / 1000
    ref = Process.monitor(pid)
    :atomics.put(counts, 3, 1)

    receive do
      {:DOWN, ^ref, :process, ^pid, _} -> worst
    end
  end

  defp upgrade_accounts(count, quick) do
    accounts = for i <- 0..(count - 1), do: %{name: "account #{i}", score: rem(i, 1000), stage: rem(i, 3)}

    samples =
      for _ <- 1..if(quick, do: 1, else: 5) do
        {:ok, ledger} = GenServer.start(Compare.Ledger, accounts)

        took =
          timed_us(fn ->
            :ok = :sys.suspend(ledger, :infinity)
            :ok = :sys.change_code(ledger, Compare.Ledger, "2", nil, :infinity)
            :ok = :sys.resume(ledger, :infinity)
          end)

        GenServer.stop(ledger)
        took / 1000
      end

    metric("pause", percentile(samples, 0.50), "ms")
  end
end

case System.argv() do
  [workload | rest] -> Compare.run(workload, rest == ["--quick"])
  [] -> Compare.run("", false)
end
